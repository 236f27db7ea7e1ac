"""``POST /oauth/register`` (RFC 7591 §3) and ``GET|PUT|DELETE /oauth/register/<client_id>`` (RFC 7592).

Machine endpoints (the lean handler, JSON errors). With ``AUTHSERVER_DCR=off`` both answer the
uniform 404 whatever the method, so a scanner can't tell they exist. Every request is counted on
``register.ip`` before anything is read; then the body's size, type and JSON are checked before
any query. A refusal answers the RFC 7591 §3.2.2 error (a bad or missing bearer token: RFC 6750
§3.1's 401 with a ``Bearer`` challenge) and is audited (``client.registration_refused``).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from authserver import endpoints, notfound
from authserver.audit.context import request_personal
from authserver.handlers import json_error
from authserver.http import NO_STORE
from authserver.netaddr import client_address, client_network
from authserver.ratelimit.limiter import enforce, note
from clients.registration import selectors, services
from clients.registration.metadata import MAX_BODY_BYTES, Metadata, RegistrationRefused, metadata_parse
from clients.registration.models import Registration


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _body(request: HttpRequest) -> object:
    """The JSON body, bounded before it is read (RFC 7591 §3.1: ``application/json``)."""
    if request.content_type != "application/json":
        raise RegistrationRefused("invalid_client_metadata", "the body must be application/json",
                                  reason="content_type")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        raise RegistrationRefused("invalid_client_metadata", f"the body must be at most {MAX_BODY_BYTES} bytes",
                                  reason="body_too_large")
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise RegistrationRefused("invalid_client_metadata", f"the body must be at most {MAX_BODY_BYTES} bytes",
                                  reason="body_too_large")
    try:
        text = raw.decode("utf-8")
        if "\x00" in text:
            raise ValueError("NUL")
        return json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RegistrationRefused("invalid_client_metadata", "the body must be a JSON object",
                                  reason="malformed_json") from None


def _answer(registration: Registration, rat: str, metadata: Metadata | None = None, status: int = 200) -> HttpResponse:
    """RFC 7591 §3.2.1 / RFC 7592 §3: what was registered (with any substitution), never a secret."""
    client = registration.client
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(registration.created_at.timestamp()),
        "registration_access_token": rat,
        "registration_client_uri": endpoints.url("register-client", client_id=client.client_id),
        "redirect_uris": client.redirect_uris.split(),
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": " ".join(sorted(client.allowed_scopes.values_list("name", flat=True))),
        "resources": client.allowed_audiences,
    }
    if client.name:
        data["client_name"] = client.name
    response = JsonResponse(data, status=status)
    for key, value in NO_STORE.items():
        response[key] = value
    return response


def _refused(request: HttpRequest, refused: RegistrationRefused, subject: str = "endpoint:register") -> HttpResponse:
    services.registration_refused(refused=refused, subject=subject, personal=request_personal(request))
    headers = {}
    if refused.status == 401:  # RFC 6750 §3: no error code when no token was presented
        headers["WWW-Authenticate"] = ('Bearer' if _bearer(request) is None
                                       else f'Bearer error="invalid_token", error_description="{refused.description}"')
    return json_error(refused.status, refused.error, refused.description, **headers)


def _gate(request: HttpRequest, methods: tuple[str, ...]) -> HttpResponse | None:
    """The uniform 404 when registration is off; 405 for another method; then the per-address limit."""
    if settings.DCR == "off":
        return notfound.response()
    if request.method not in methods:
        return json_error(405, "invalid_request", f"Method not allowed; use {' or '.join(methods)}.",
                          Allow=", ".join(methods))
    note(request, enforce("register.ip", client_network(client_address(request.META))))
    return None


@csrf_exempt  # no session, no form: a JSON API (and the bearer token, in token mode)
def register(request: HttpRequest) -> HttpResponse:
    early = _gate(request, ("POST",))
    if early is not None:
        return early
    try:
        if settings.DCR == "token":  # RFC 7591 §3: the token before the body is read
            services.initial_access_token_check(value=_bearer(request))
        metadata = metadata_parse(_body(request))
        registration, rat = services.registration_create(metadata=metadata, initial_access_token=_bearer(request),
                                                         personal=request_personal(request))
    except RegistrationRefused as refused:
        return _refused(request, refused)
    return _answer(registration, rat, metadata, status=201)


@csrf_exempt
def register_client(request: HttpRequest, client_id: str) -> HttpResponse:
    early = _gate(request, ("GET", "PUT", "DELETE"))
    if early is not None:
        return early
    presented = _bearer(request)
    registration = selectors.registration_for_token(client_id=client_id, value=presented)
    try:
        if registration is None:  # RFC 7592 §2.1: 401 for a bad token or an unknown client alike
            raise RegistrationRefused("invalid_token", "the registration access token is not valid for this client",
                                      reason="rat_invalid", status=401)
        assert presented is not None  # noqa: S101 - a registration was found by it
        if request.method == "GET":
            return _answer(registration, presented)
        if request.method == "DELETE":
            services.registration_delete(registration=registration, personal=request_personal(request))
            return HttpResponse(status=204, headers=NO_STORE)
        data = _body(request)
        if isinstance(data, dict) and data.get("client_id") != client_id:  # RFC 7592 §2.2
            raise RegistrationRefused("invalid_client_metadata", "client_id must be this client's", reason="client_id")
        metadata = metadata_parse(data, update=True)
        updated, rat = services.registration_update(registration=registration, metadata=metadata,
                                                    personal=request_personal(request))
    except RegistrationRefused as refused:
        return _refused(request, refused, subject=f"client:{registration.client.client_id}"
                        if registration is not None else "endpoint:register-client")
    return _answer(updated, rat, metadata)
