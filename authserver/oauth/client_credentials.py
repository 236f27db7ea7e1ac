"""The client credentials grant (RFC 6749 §4.4) answered without oauthlib, when that is safe.

oauthlib's generic request handling costs more than the rest of a client_credentials request
(issue 17). :func:`token_response` answers the common case itself: a confidential client that
authenticates with one method and well-formed credentials and asks for what it is registered for.
It makes the decisions the oauthlib path makes, through the same pieces (the validator's client
cache and secret check, the retired-secret grace, DOT's grant mapping, the scope registry's
defaults, RFC 8707 audiences, the per-client limit) and writes the same token and ``token.issued``
event (authserver.oauth.issuance). For anything else, an error included, it returns None *before*
any side effect, and the oauthlib path answers: nothing is counted or written twice, and every
error keeps the one answer oauthlib gives. tests/oauth/test_client_credentials_differential.py
runs both paths on generated requests and compares the answers, rows and events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value
from oauth2_provider.oauth2_validators import GRANT_TYPE_MAPPING, is_valid_resource_uri
from oauthlib.oauth2.rfc6749 import utils

from authserver import credentials
from authserver.audit.context import request_personal
from authserver.oauth.cimd import services as cimd
from authserver.oauth.clientauth import basic_credentials, retired_secret_expiry
from authserver.oauth.issuance import access_token_save
from authserver.oauth.lifetimes import access_token_lifetime
from authserver.oauth.validator import AuthServerValidator

AccessToken = get_access_token_model()

GRANT = "client_credentials"
# Parameters the grant reads (RFC 6749 §4.4.2, §2.3.1; RFC 8707 §2). Any other is ignored by
# oauthlib (§3.2): rare enough to leave to it, so this path never has to reason about it.
_PARAMETERS = frozenset({"grant_type", "scope", "resource", "client_id", "client_secret"})
_MAX_CLIENT_ID = 100  # the longest registered client id (the validator's own bound)

_validator = AuthServerValidator()


class _Probe:
    """What the validator's client cache reads and writes on oauthlib's request object."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.client: Any = None
        self.headers = meta
        self._authserver_scopes: tuple[Any, list[str]] | None = None


def _presented(request: HttpRequest) -> tuple[str, str] | None:
    """``(client_id, secret)`` when the request uses exactly one client authentication method
    (RFC 6749 §2.3) in its plainest form, else None."""
    header = request.META.get("HTTP_AUTHORIZATION")
    body_id, body_secret = request.POST.get("client_id"), request.POST.get("client_secret")
    if header is not None:
        # DOT reads only the exact scheme name "Basic"; a body credential beside it is an error.
        if body_id is not None or body_secret is not None or not header.startswith("Basic "):
            return None
        return basic_credentials(header)
    if body_id is None or body_secret is None:
        return None
    return body_id, body_secret


def _form(request: HttpRequest) -> dict[str, list[str]] | None:
    """The form, when it is the plain case: no query (oauthlib refuses one), no file, known
    parameters, no empty value, nothing repeated but ``resource``. Read as DOT reads it
    (``request.POST``, whatever the content type)."""
    if request.META.get("QUERY_STRING") or request.FILES:
        return None
    form = dict(request.POST.lists())
    if not form.keys() <= _PARAMETERS or form.get("grant_type") != [GRANT]:
        return None
    for name, values in form.items():
        if not all(value.strip() for value in values) or (name != "resource" and len(values) != 1):
            return None
    return form


def _client(client_id: str, secret: str, probe: _Probe) -> Any:
    """The registered confidential client these credentials authenticate, or None."""
    # The validator's bounds (authserver.oauth.validator._load_application); a metadata document's
    # client may need a fetch, which is the oauthlib path's to make.
    if not client_id or "\x00" in client_id or len(client_id) > _MAX_CLIENT_ID or cimd.is_document_url(client_id):
        return None
    if not credentials.is_well_formed(secret, credentials.CLIENT_SECRET):
        return None
    client = _validator._load_registered(client_id, probe)
    if client is None or client.registration_source == cimd.CIMD or client.client_type != client.CLIENT_CONFIDENTIAL:
        return None
    if _validator._check_secret(secret, client.client_secret):
        return client
    # RFC 6749 §10.3 rotation: the previous secret still authenticates during its grace window.
    return client if retired_secret_expiry(client.pk, secret) is not None else None


def _scopes(form: dict[str, list[str]], client: Any, probe: _Probe) -> list[str] | None:
    """RFC 6749 §3.3: the requested scopes, or every allowed one when none are requested; None
    if any is not allowed. oauthlib's list, in the request's order, repeats included."""
    allowed = list(probe._authserver_scopes[1]) if probe._authserver_scopes else []
    requested = form.get("scope")
    scopes = utils.scope_to_list(requested[0]) if requested else list(allowed)
    return scopes if set(scopes) <= set(allowed) else None


def _audiences(form: dict[str, list[str]], client: Any) -> list[str] | None:
    """RFC 8707 §2: the requested resources, each registered for the client, or all of them."""
    allowed = list(client.allowed_audiences or [])
    requested = form.get("resource", [])
    if not requested:
        return allowed
    if not all(is_valid_resource_uri(resource) and resource in allowed for resource in requested):
        return None
    return requested


def token_response(request: HttpRequest, *, admit: Callable[[str], None]) -> HttpResponse | None:
    """The token response for a plain client_credentials request, or None for the oauthlib path.

    ``admit(client_id)`` applies the per-client limit (it raises to refuse); it is called once the
    client has authenticated and this path is sure to answer, as the validator calls it.
    """
    form = _form(request)
    presented = _presented(request) if form is not None else None
    if form is None or presented is None:
        return None
    probe = _Probe(request.META)
    client = _client(*presented, probe)
    if client is None or not client.allows_grant_type(*GRANT_TYPE_MAPPING[GRANT]):
        return None
    scopes, audiences = _scopes(form, client, probe), _audiences(form, client)
    if scopes is None or audiences is None:
        return None
    admit(client.client_id)
    value = credentials.generate_access_token(probe)
    expires_in = access_token_lifetime(probe)
    scope = " ".join(scopes)
    token = AccessToken(user=None, scope=scope, expires=timezone.now() + timedelta(seconds=expires_in),
                        application=client, resource=audiences, hint=credentials.hint(value))
    set_token_value(token, value)
    actor = f"client:{client.client_id}"
    access_token_save(token=token, event={
        "event": "token.issued", "actor": actor, "subject": actor,
        "details": {"grant_type": GRANT, "scope": scope, "aud": list(audiences), "access_token": token.hint,
                    "refresh_token": None, "api_key": None},
        "personal": request_personal(request),
    })
    # RFC 6749 §5.1, in oauthlib's member order and encoding.
    body = json.dumps({"access_token": value, "expires_in": expires_in, "token_type": "Bearer", "scope": scope})
    response = HttpResponse(content=body, status=200)
    for name, header in {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}.items():
        response[name] = header
    return response
