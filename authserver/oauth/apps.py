from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "authserver.oauth"
    label = "oauth"
    verbose_name = "OAuth tokens"
