from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from authserver import credentials
        from authserver.introspection.service import register_resolver
        from authserver.oauth.server import register_grant
        from keys.exchange import TOKEN_EXCHANGE, ApiKeyExchangeGrant
        from keys.verification import resolve

        # Introspection finds API keys by their prefix; the token endpoint exchanges them (RFC 8693).
        register_resolver(credentials.api_key_prefix(), resolve)
        register_grant(TOKEN_EXCHANGE, ApiKeyExchangeGrant)
