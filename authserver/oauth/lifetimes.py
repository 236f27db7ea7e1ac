"""Per-client token lifetimes, bounded by the server maximum (read by oauthlib's BearerToken)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def access_token_lifetime(request: Any) -> int:
    client = getattr(request, "client", None)
    if client is None or not hasattr(client, "effective_access_token_lifetime"):
        lifetime = settings.ACCESS_TOKEN_DEFAULT_SECONDS
    else:
        lifetime = client.effective_access_token_lifetime()
    # A grant may cap it further (an exchanged API key never outlives the key).
    cap = getattr(request, "_authserver_max_lifetime", None)
    return min(lifetime, cap) if cap else lifetime
