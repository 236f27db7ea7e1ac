from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "authserver.accounts"
    label = "accounts"
    verbose_name = "Accounts"
