"""The RFC 7662 introspection endpoint: HTTP in, HTTP out; the decisions are the service's.

Resource servers call it on every request they serve, so it reads its form without a QueryDict
and writes its JSON without a per-response encoder. It runs on the lean machine handler
(authserver.handlers): no session, CSRF or authentication middleware.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from authserver import events, revocation
from authserver.http import NO_STORE
from authserver.introspection import service
from authserver.netaddr import client_address, client_network
from authserver.ratelimit.failures import failure_budget_check, failure_record
from authserver.ratelimit.limiter import RateLimited, enforce, note

_JSON_HEADERS = {"Content-Type": "application/json", **NO_STORE}
FORM = "application/x-www-form-urlencoded"


def _json(data: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    # The same bytes JsonResponse writes, without building a DjangoJSONEncoder per response.
    return HttpResponse(json.dumps(data), status=status, headers={**_JSON_HEADERS, **headers})


def read_form(request: HttpRequest) -> dict[str, str] | None:
    """The form body as a dict: ``application/x-www-form-urlencoded`` (RFC 7662 §2.1) read without
    building a QueryDict, ``multipart/form-data`` through Django's parser, ``{}`` for another
    content type; None if it is malformed or repeats a parameter ("parameters MUST NOT be
    included more than once", RFC 6749 §3.2)."""
    if request.content_type != FORM:
        if request.content_type != "multipart/form-data":
            return {}
        lists = dict(request.POST.lists())
        return None if any(len(values) != 1 for values in lists.values()) else {k: v[0] for k, v in lists.items()}
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = body.split("&") if body else []
    if len(fields) > settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:
        return None
    # urllib's parse_qsl, minus its generality: machine callers send a handful of fields whose
    # values (credentials, addresses) rarely need unescaping.
    form: dict[str, str] = {}
    try:
        for field in fields:
            if not field:
                continue
            name, _, value = field.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name, errors="strict")
            if "%" in value or "+" in value:
                value = unquote_plus(value, errors="strict")
            if name in form:
                return None
            form[name] = value
    except UnicodeDecodeError:
        return None
    return form


def resource_server_caller(request: HttpRequest, form: dict[str, str], view: revocation.RequestView, *,
                           refused: Callable[[str | None, str | None], None] | None = None,
                           realm: str = "introspection") -> dict[str, Any] | HttpResponse:
    """The authenticated resource server, or the 401 to answer (429 once a failure budget is spent).

    The one way a resource server authenticates at a machine endpoint (introspection, the path
    key, the revocation stream). ``refused(client_id, network)`` runs on a failure answered 401
    (an audit record where the endpoint wants one); a failure past the budget is the limiter's
    one ``rate_limit.exceeded`` per window instead."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    caller = service.authenticate_resource_server(
        authorization=authorization, form=form, view=view,
        # Only credentials that missed the cache meet the failure budgets (a hit verified before):
        # the hot path neither calls this nor pays for it.
        guard=lambda client_id: failure_budget_check(client_id=client_id,
                                                     network=client_network(client_address(request.META))))
    if caller is not None:
        return caller
    # The same budgets as the token endpoint's (authserver.ratelimit.failures): 429 once spent.
    network = client_network(client_address(request.META))
    events.client_auth_failed.emit(network)
    presented = service.presented_client_credentials(authorization, form)
    client_id = presented[0] if presented else None
    spent = failure_record(client_id=client_id, network=network)
    if spent is not None:
        raise RateLimited(spent)
    if refused is not None:  # only within the budget: a flood can't write without bound
        refused(client_id, network)
    return _json({"error": "invalid_client"}, 401, **{"WWW-Authenticate": f'Basic realm="{realm}"'})


@csrf_exempt
@require_POST
@sensitive_post_parameters()
def introspect(request: HttpRequest) -> HttpResponse:
    """RFC 7662 token introspection.

    The caller must authenticate as a registered resource server (§2.1 requires some form of
    authorization); it learns only about tokens whose audience includes it (§4, RFC 8707).
    Tokens are accepted in the form body only, never in the query string (RFC 6750 §2.3).
    """
    if request.GET:
        return _json({"error": "invalid_request", "error_description": "Parameters belong in the body."}, 400)
    form = read_form(request)
    view = revocation.request_view()  # once per request: may cached answers be served?
    caller = resource_server_caller(request, form or {}, view)
    if isinstance(caller, HttpResponse):
        return caller
    note(request, enforce("introspect.rs", caller["client_id"]))
    if form is None:
        return _json({"error": "invalid_request", "error_description": "Malformed or repeated parameters."}, 400)
    token = form.get("token")
    if not token:
        return _json({"error": "invalid_request", "error_description": "The token parameter is required."}, 400)
    client_ip = form.get("client_ip")
    answer = service.introspect(credential=token, caller=caller, client_ip=client_ip, view=view)
    # For the access line and the metrics (authserver.handlers reports it; an attribute, no call).
    active = answer["active"]
    request.telemetry = (answer.get("client_id") if active else None, caller["client_id"],  # type: ignore[attr-defined]
                         "active" if active else "rate_limited" if answer.get("rate_limited") else "inactive")
    if not answer["active"] and not answer.get("rate_limited"):
        # Token fishing (per resource server) and invalid tokens (per presenting network).
        address = client_ip or client_address(request.META)
        events.introspection_inactive.emit((caller["client_id"], client_network(address) if address else None))
    return _json(answer)
