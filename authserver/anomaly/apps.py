from django.apps import AppConfig


class AnomalyConfig(AppConfig):
    name = "authserver.anomaly"
    label = "anomaly"
    verbose_name = "Anomalies and adaptive limits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from authserver.anomaly import observers

        observers.connect()
