from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "authserver.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from authserver.audit import signals  # noqa: F401 - connects login and admin receivers
