"""The oauthlib server DOT drives: only the grants we allow, plus grants other apps register.

Implicit and password grants are removed outright (RFC 9700 §2.1.2, §2.4), on top of DOT's gates
refusing them. The device grant (RFC 8628) stays: oauthlib's handler serves it, only to clients
registered for it (``validate_grant_type``), with our validator deciding each code's status
(authserver.oauth.device). Apps above this one add grant types through :func:`register_grant`
in their ``AppConfig.ready`` (the keys app registers RFC 8693 token exchange for API keys), so
this module imports none of them.
"""

from __future__ import annotations

from typing import Any

from oauthlib.oauth2 import Server

from authserver.oauth.lifetimes import access_token_lifetime

_extra_grants: dict[str, Any] = {}


def register_grant(grant_type: str, grant_class: Any) -> None:
    """Serve ``grant_type`` at the token endpoint with ``grant_class(request_validator)``."""
    _extra_grants[grant_type] = grant_class


class AuthServer(Server):
    def __init__(self, request_validator: Any, *args: Any, **kwargs: Any) -> None:
        # Each token's lifetime is the client's (bounded by the server maximum) or a grant's cap.
        kwargs["token_expires_in"] = access_token_lifetime
        super().__init__(request_validator, *args, **kwargs)
        for grant in ("password", "implicit"):
            self._grant_types.pop(grant, None)
        self._response_types.pop("token", None)
        for grant_type, grant_class in _extra_grants.items():
            self._grant_types[grant_type] = grant_class(request_validator)
