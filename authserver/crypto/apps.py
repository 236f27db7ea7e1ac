from django.apps import AppConfig


class CryptoConfig(AppConfig):
    name = "authserver.crypto"
    label = "crypto"
    verbose_name = "Encryption at rest"

    def ready(self) -> None:
        # Refuse to start with a key file that is readable by others or corrupt; a missing one is
        # only decided on first use, when the database can tell a fresh install from lost keys.
        from authserver.crypto import backends

        backends.check_configuration()
