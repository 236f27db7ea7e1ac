from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "authserver.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from authserver.observability import access

        access.connect()
