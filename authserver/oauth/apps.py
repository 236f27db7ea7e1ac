from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "authserver.oauth"
    label = "oauth"
    verbose_name = "OAuth tokens"

    def ready(self) -> None:
        from authserver.logging import install_record_redaction

        install_record_redaction()
