from django.apps import AppConfig


class DeviceConfig(AppConfig):
    name = "authserver.oauth.device"
    label = "device"
    verbose_name = "Device authorizations"
    default_auto_field = "django.db.models.BigAutoField"
