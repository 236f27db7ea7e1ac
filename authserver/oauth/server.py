"""The oauthlib server DOT drives: only the grants we allow, plus API-key token exchange.

Implicit, password and device grants are removed outright (RFC 9700 §2.1.2, §2.4), on top of
DOT's gates refusing them.
"""

from __future__ import annotations

from typing import Any

from oauthlib.oauth2 import Server

from keys.exchange import TOKEN_EXCHANGE, ApiKeyExchangeGrant


class AuthServer(Server):
    def __init__(self, request_validator: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(request_validator, *args, **kwargs)
        for grant in ("password", "urn:ietf:params:oauth:grant-type:device_code", "implicit"):
            self._grant_types.pop(grant, None)
        self._response_types.pop("token", None)
        self._grant_types[TOKEN_EXCHANGE] = ApiKeyExchangeGrant(request_validator)
