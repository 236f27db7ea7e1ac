"""The per-client limit at the token endpoint, applied at DOT's validator seam.

A client's limit can only be applied once the client is known, which happens inside oauthlib's
grant handling (client authentication). The validator is domain code and can't call the limiter
(a policy layer above it), so this interface-layer subclass does, beside the token view's own
per-network limits; ``OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]`` names it. A refused request
raises ``RateLimited`` before any grant work (429).
"""

from __future__ import annotations

from typing import Any

from authserver.oauth.validator import AuthServerValidator
from authserver.ratelimit.limiter import enforce, remember


def client_admit(client_id: str) -> None:
    """The per-client limit of an authenticated client (raises RateLimited); its RateLimit fields
    reach the response through the token view. Also called by the lean client_credentials path
    (authserver.oauth.client_credentials)."""
    remember(enforce("token.client", client_id))


class RateLimitedValidator(AuthServerValidator):
    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        authenticated = super().authenticate_client(request, *args, **kwargs)
        if authenticated:
            client_admit(request.client.client_id)
        return authenticated

    def authenticate_client_id(self, client_id: str, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not super().authenticate_client_id(client_id, request, *args, **kwargs):
            return False
        client_admit(request.client.client_id)
        return True

    def cimd_fetch_admit(self, host: str) -> None:
        # Fetches of Client ID Metadata Documents per host (authserver.oauth.cimd): we never become
        # a way to flood someone's server, and a flood of distinct URLs on one host costs little.
        remember(enforce("cimd.fetch", host))
