"""django-oauth-toolkit's settings (``OAUTH2_PROVIDER``), built from the parsed configuration.

Kept out of authserver/settings.py so that module stays a readable list of names."""

from __future__ import annotations

from typing import Any

from authserver.conf import AuthServerConfig


def oauth2_provider(config: AuthServerConfig) -> dict[str, Any]:
    return {
        "OAUTH2_VALIDATOR_CLASS": "authserver.oauth.limits.RateLimitedValidator",
        "OAUTH2_SERVER_CLASS": "authserver.oauth.server.AuthServer",
        "SCOPES_BACKEND_CLASS": "clients.scopes.DatabaseScopes",
        "SCOPES": {"__registry__": "Scopes live in the database (clients.Scope)"},
        "DEFAULT_SCOPES": [],
        "CLIENT_SECRET_GENERATOR_CLASS": "authserver.credentials.ClientSecretGenerator",
        "CLIENT_SECRET_HASHER": "authserver_sha256",
        "ACCESS_TOKEN_GENERATOR": "authserver.credentials.generate_access_token",
        "REFRESH_TOKEN_GENERATOR": "authserver.credentials.generate_refresh_token",
        "ACCESS_TOKEN_EXPIRE_SECONDS": config.tokens.access_default_seconds,
        "REFRESH_TOKEN_EXPIRE_SECONDS": config.tokens.refresh_max_seconds,
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
        "PKCE_REQUIRED": True,
        # Loopback http for native apps is allowed per client (Client.get_allowed_schemes, RFC 8252).
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
        "ALLOWED_SCHEMES": ["https"],
        "ALLOW_URI_WILDCARDS": False,
        "ALLOW_LOCALHOST_LOOPBACK": False,
        "REQUEST_APPROVAL_PROMPT": "force",
        "OIDC_ENABLED": False,
        "OIDC_ISS_ENDPOINT": config.issuer,
        "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
        # DOT's default reads its clear-text DeviceGrant before every device token request; ours is
        # hash-only and the validator sets the user and scopes (authserver.oauth.device.grant).
        "OAUTH_PRE_TOKEN_VALIDATION": [],
        "OAUTH2_GRANT_TYPES_SUPPORTED": [
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code",  # RFC 8628 (authserver.oauth.device)
        ],
        "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
        # Every RFC 9700 gate on (docs/decisions/0004-secure-defaults.md).
        "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
        "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
        # Small batches with pauses between them (CLEANUP_PAUSE_RATIO): the sweep never holds the CPU long.
        "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": config.cleanup.batch_size,
        # Client ID Metadata Documents (authserver.oauth.cimd resolves them, not DOT's resolver, which
        # keeps a stale document when a refetch fails and writes no audit event: DOT's own stays off).
        # Its bounds are read by our fetcher: the whole fetch, the body, and how long a document is
        # believed (its Cache-Control max-age, clamped); a refused URL is not fetched again for a while.
        "CIMD_ENABLED": False,
        "CIMD_FETCH_TIMEOUT_SECONDS": 5,
        "CIMD_MAX_DOCUMENT_SIZE": 16 * 1024,
        "CIMD_METADATA_MIN_AGE_SECONDS": 60,
        "CIMD_METADATA_MAX_AGE_SECONDS": 3600,
        "CIMD_FAILURE_BACKOFF_SECONDS": 30,
        "CIMD_MAX_CONCURRENT_FETCHES": 8,
        # DOT registers the admin for its swapped models itself; these are ours (no secret columns).
        "APPLICATION_ADMIN_CLASS": "clients.admin.ClientAdmin",
        "ACCESS_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.AccessTokenAdmin",
        "REFRESH_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.RefreshTokenAdmin",
        "GRANT_ADMIN_CLASS": "authserver.oauth.admin.GrantAdmin",
        "ID_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.IDTokenAdmin",
    }
