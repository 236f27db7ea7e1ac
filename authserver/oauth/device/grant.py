"""The token endpoint's half of RFC 8628 (§3.4-§3.5), at DOT's validator seam.

oauthlib's ``DeviceCodeGrant`` authenticates the client, checks it is registered for the grant
(``validate_grant_type``: only clients whose ``grant_types`` name it) and asks the validator for the
device code's status, which it maps to ``authorization_pending``, ``slow_down``,
``expired_token``, ``access_denied`` or ``invalid_grant``. The answer comes from
:func:`authserver.oauth.device.services.device_code_poll`; an authorized code hands the user, scopes
and audiences decided on the user-code page to the token it becomes, and starts a refresh family.
"""

from __future__ import annotations

from typing import Any

from authserver.oauth.device.services import POLL_AUTHORIZED, device_code_poll


class DeviceCodeValidation:
    """Mixed into :class:`authserver.oauth.validator.AuthServerValidator`."""

    def validate_device_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> str | None:
        status, row = device_code_poll(client=request.client, device_code=code)
        if status == POLL_AUTHORIZED and row is not None:
            request.user = row.user
            request.scopes = row.scope.split()
            # RFC 8707: the audiences shown on the consent screen; the token request carries none.
            request.resource = list(row.resource)
            request._authserver_token_family = row.token_family
        return status
