"""``POST /oauth/path-key`` (a resource server fetches its path key) and ``GET /oauth/discovery``
(a caller learns where an API is reachable now). docs/rotating-paths.md.

Both run on the lean machine handler (authserver.handlers): no session, CSRF or authentication
middleware; a database that is down answers 503 there (fail closed), never a guessed URL or key.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from authserver import revocation
from authserver.http import NO_STORE
from authserver.introspection import service
from authserver.introspection.endpoint import read_form, resource_server_caller
from authserver.netaddr import client_address, client_network
from authserver.ratelimit.limiter import enforce, note
from clients.resource_paths.services import path_key_fetch, path_key_refusal_record
from clients.selectors import resource_paths_for_audience

_HEADERS = {"Content-Type": "application/json", **NO_STORE}


def _json(data: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse(json.dumps(data), status=status, headers={**_HEADERS, **headers})


def path_key(request: HttpRequest) -> HttpResponse:
    """The resource server's own path key and settings, for the kit to re-derive its aliases.

    Authenticated exactly as introspection is (RFC 7662 §2.1: HTTP Basic or the form's
    client_id/client_secret, the same failure budgets); every refusal and every key handed out is
    audited. With rotating paths off the answer is only ``{"rotating": false}``.
    """
    if request.GET:
        return _json({"error": "invalid_request", "error_description": "Parameters belong in the body."}, 400)
    form = read_form(request)
    caller = resource_server_caller(
        request, form or {}, revocation.request_view(), realm="path-key",
        refused=lambda client_id, network: path_key_refusal_record(presented_client_id=client_id, network=network))
    if isinstance(caller, HttpResponse):
        return caller
    note(request, enforce("pathkey.rs", caller["client_id"]))
    if form is None:
        return _json({"error": "invalid_request", "error_description": "Malformed or repeated parameters."}, 400)
    row = path_key_fetch(client_pk=caller["id"], client_id=caller["client_id"])
    if row is None:
        return _json({"rotating": False})
    return _json({"rotating": True, "key": row.path_key, "version": row.key_version,
                  "window_seconds": row.effective_window_seconds, "per_client": row.per_client_aliases,
                  "public_url": row.public_url})


def _bearer_error(status: int, error: str | None, description: str = "") -> HttpResponse:
    # RFC 6750 §3: no error code when the request carried no credential (§3.1), else the code.
    challenge = 'Bearer realm="discovery"' + (f', error="{error}"' if error else "")
    body = {"error": error or "invalid_token", **({"error_description": description} if description else {})}
    return _json(body, status, **{"WWW-Authenticate": challenge})


def discovery(request: HttpRequest) -> HttpResponse:
    """Where the API of ``audience`` is reachable now: the current and next window's base URLs.

    The caller presents an access token or an API key (RFC 6750 §2.1, the header only: never the
    query string, §2.3) whose audience includes the one asked about, verified by the same rules
    as introspection (the caller's address is the ``client_ip`` an API key's allowlist sees).
    Anything else is one generic ``invalid_token``: it says nothing about whether the credential,
    the audience or the API exists.
    """
    network = client_network(client_address(request.META))
    note(request, enforce("discovery.ip", network))
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    audiences = request.GET.getlist("audience")
    if "access_token" in request.GET:
        return _bearer_error(400, "invalid_request", "Credentials belong in the Authorization header.")
    if not scheme:
        return _bearer_error(401, None)
    if scheme.lower() != "bearer" or not credential or " " in credential.strip():
        return _bearer_error(401, "invalid_token")
    if len(audiences) != 1 or not audiences[0]:
        return _bearer_error(400, "invalid_request", "Give exactly one audience.")
    audience = audiences[0]
    answer = service.introspect(credential=credential.strip(), caller={"audience": audience},
                                client_ip=client_address(request.META), view=revocation.request_view())
    if answer.get("rate_limited"):
        # The key is good but over its own limit (keys.verification): the caller backs off.
        return _json({"error": "rate_limited"}, 429, **{"Retry-After": str(answer.get("retry_after", 1))})
    if not answer["active"]:
        return _bearer_error(401, "invalid_token")
    found = resource_paths_for_audience(audience=audience)
    settings_row = found[1] if found else None
    if settings_row is None or not settings_row.rotating_paths:
        # A fixed API: the registered public URL if there is one, else the audience URI itself.
        return _json({"audience": audience, "rotating": False,
                      "url": (settings_row.public_url if settings_row else "") or audience})
    return _json({**settings_row.discovery(audience=audience, client_id=answer.get("client_id")), "rotating": True})
