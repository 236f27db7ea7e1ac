from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "authserver.staff"
    label = "staff"
    verbose_name = "Staff plane"
    default_auto_field = "django.db.models.BigAutoField"
