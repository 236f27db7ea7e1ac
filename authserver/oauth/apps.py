from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "authserver.oauth"
    label = "oauth"
    verbose_name = "OAuth tokens"

    def ready(self) -> None:
        from authserver.logging import install_record_redaction

        install_record_redaction()
        # Every process that runs Django has the Celery app (it was imported by ``authserver``'s
        # __init__ before, the Celery docs' pattern): ``@shared_task`` and django-celery-beat's
        # admin read ``current_app``, which must be this one, not Celery's default.
        import authserver.celery  # noqa: F401
