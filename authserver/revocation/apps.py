from django.apps import AppConfig


class RevocationConfig(AppConfig):
    name = "authserver.revocation"
    label = "revocation"
    verbose_name = "Revocation"
    default_auto_field = "django.db.models.BigAutoField"
