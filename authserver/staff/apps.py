from django.apps import AppConfig


class StaffConfig(AppConfig):
    default = True  # the app's own config ("authserver.staff" in INSTALLED_APPS), not the one below
    name = "authserver.staff"
    label = "staff"
    verbose_name = "Staff plane (second factors)"
    default_auto_field = "django.db.models.BigAutoField"


class RecoveryCodesConfig(AppConfig):
    """django-otp's ``otp_static`` app (recovery codes, stored as digests by authserver.staff.services),
    named for the people who read the admin rather than by its module ("OTP_STATIC")."""

    name = "django_otp.plugins.otp_static"
    label = "otp_static"
    verbose_name = "Staff recovery codes"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django_otp.plugins.otp_static.models import StaticDevice

        StaticDevice._meta.verbose_name = "recovery-code set"
        StaticDevice._meta.verbose_name_plural = "recovery-code sets"
