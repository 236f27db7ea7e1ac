from django.apps import AppConfig


class PasskeysConfig(AppConfig):
    name = "authserver.passkeys"
    label = "passkeys"
    verbose_name = "Staff passkeys"
    default_auto_field = "django.db.models.BigAutoField"
