from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "authserver.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from authserver.audit import signals
        from authserver.audit.services import audit_reencrypt
        from authserver.crypto import rotation

        signals.install_admin_log_hook()  # the login and password receivers connect on import
        # The audit trail keeps its ciphertexts in its own column (its ids order the chain).
        rotation.register_reencryptor(lambda: ("audit_events_reencrypted", audit_reencrypt()))
