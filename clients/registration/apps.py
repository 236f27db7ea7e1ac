from django.apps import AppConfig


class RegistrationConfig(AppConfig):
    name = "clients.registration"
    label = "registration"
    verbose_name = "Dynamic client registration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clients.registration import signals

        signals.connect()
