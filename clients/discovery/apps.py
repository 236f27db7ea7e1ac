from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    name = "clients.discovery"
    label = "discovery"
    verbose_name = "Discovery URLs"
    default_auto_field = "django.db.models.BigAutoField"
