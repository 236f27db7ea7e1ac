from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.crypto.testapp"
    label = "crypto_testapp"
    default_auto_field = "django.db.models.BigAutoField"
