"""RFC 8693 token exchange: trade an API key for a short-lived access token.

``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` with
``subject_token=<API key>`` and ``subject_token_type=urn:authserver:params:oauth:token-type:api_key``.

The key itself authenticates the exchange (RFC 8693 §2.1 makes client authentication optional),
so a long-lived key can stay in one place while only short-lived tokens travel with each AI API
call. If the request also carries client credentials they must be valid and belong to the key's
client. Everything the key's policy says applies: scopes and audiences can only narrow, the IP
allowlist is checked against the caller's address, quota and rate limit are counted, and the
token lives at most ``API_KEY_EXCHANGE_TOKEN_SECONDS`` and never past the key's own end. Revoking
or suspending the key, or rotating it without grace, deletes the tokens it was exchanged for; a
rotation with grace cuts them off when the grace ends.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import get_application_model
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from authserver.netaddr import client_address
from keys import usage
from keys.policy import ip_allowed
from keys.selectors import api_key_lookup
from keys.usability import api_key_end

log = logging.getLogger("authserver.keys.exchange")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
API_KEY_TOKEN_TYPE = "urn:authserver:params:oauth:token-type:api_key"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class RateLimited(errors.OAuth2Error):
    """429 with Retry-After: the key is good but over its own rate limit."""

    error = "slow_down"
    status_code = 429
    description = "The API key is over its rate limit."

    def __init__(self, *, retry_after: int, request: Any) -> None:
        self.retry_after = retry_after
        super().__init__(request=request)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ApiKeyExchangeGrant(GrantTypeBase):
    def create_token_response(self, request: Any, token_handler: Any) -> tuple[dict[str, str], str, int]:
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as exc:
            headers.update(exc.headers)
            return headers, exc.json, exc.status_code
        token = token_handler.create_token(request, refresh_token=False)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.request_validator.save_token(token, request)
        usage.record_use(request._authserver_api_key_id, client_address(request.headers))
        return headers, json.dumps(token), 200

    def validate_token_request(self, request: Any) -> None:
        if getattr(request, "subject_token_type", None) != API_KEY_TOKEN_TYPE:
            raise errors.InvalidRequestError(
                description=f"subject_token_type must be {API_KEY_TOKEN_TYPE}", request=request)
        for param in ("actor_token", "requested_token_type"):
            value = getattr(request, param, None)
            if value and not (param == "requested_token_type" and value == ACCESS_TOKEN_TYPE):
                raise errors.InvalidRequestError(description=f"{param} is not supported", request=request)
        row = api_key_lookup(key=getattr(request, "subject_token", None) or "")
        if row is None or not ip_allowed(client_address(request.headers), row["allowed_ips"]):
            raise errors.InvalidGrantError(request=request)
        self._authenticate(request, row["client__client_id"])
        self._narrow_scope_and_audience(request, row)
        limits = usage.consume(str(row["id"]), quota=row["quota"], rate_limit=row["rate_limit"],
                               period=row["rate_limit_period"])
        if limits.out_of_quota:
            raise errors.InvalidGrantError(request=request)
        if limits.rate_limited:
            retry_after = max(1, int((limits.rate_limit_reset or 0) - timezone.now().timestamp()))
            raise RateLimited(retry_after=retry_after, request=request)
        until = api_key_end(expires=row["expires"], grace_ends=row["grace_ends"])
        remaining = int((until - timezone.now()).total_seconds())
        request._authserver_max_lifetime = max(1, min(settings.API_KEY_EXCHANGE_TOKEN_SECONDS, remaining))
        request._authserver_api_key_id = str(row["id"])
        request.user = None

    def _authenticate(self, request: Any, key_client_id: str) -> None:
        validator = self.request_validator
        presented = validator._extract_basic_auth(request) or getattr(request, "client_secret", None)
        if presented:
            if not validator.authenticate_client(request) or request.client.client_id != key_client_id:
                raise errors.InvalidClientError(request=request)
        else:
            if request.client_id and request.client_id != key_client_id:
                raise errors.InvalidGrantError(request=request)
            request.client = get_application_model().objects.get(client_id=key_client_id)
        if not request.client.may_obtain_tokens:
            # A resource server registered without a grant never gets a token, not even for a key
            # it somehow owns (RFC 6749 §5.2 unauthorized_client).
            raise errors.UnauthorizedClientError(request=request)
        request.client_id = request.client.client_id

    def _narrow_scope_and_audience(self, request: Any, row: dict[str, Any]) -> None:
        key_scopes = row["scope"].split()
        requested = request.scopes if request.scope else key_scopes
        if not set(requested) <= set(key_scopes):
            raise errors.InvalidScopeError(request=request)
        request.scopes = list(requested)
        resources = [v for k, v in (getattr(request, "decoded_body", None) or []) if k in ("resource", "audience")]
        if any(resource not in row["audiences"] for resource in resources):
            raise errors.CustomOAuth2Error(error="invalid_target", description="The requested resource is not allowed.",
                                           request=request)
        request.resource = resources or list(row["audiences"])
