from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "authserver.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from authserver.audit import signals
        from authserver.audit.services import audit_record, audit_reencrypt
        from authserver.crypto import rotation, trail

        signals.install_admin_log_hook()  # the login and password receivers connect on import
        # The audit trail keeps its ciphertexts in its own column (its ids order the chain).
        rotation.register_reencryptor(lambda: ("audit_events_reencrypted", audit_reencrypt()))
        # Key-store operations are audited through the key store's hook (it imports nothing above it).
        trail.register_recorder(audit_record)
