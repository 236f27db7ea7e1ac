"""``GET /oauth/resource-metadata``: a resource server's own RFC 9728 protected-resource metadata.

The kit (rs/) fetches it and serves it at the resource server's ``/.well-known/oauth-protected-resource``
and at the RFC 9728 §3.1 path-inserted URL of its audience, and names that URL in every 401's
``WWW-Authenticate: Bearer resource_metadata="…"`` (§5.1), so an MCP client can find this
authorization server from a refusal. The caller authenticates exactly as at introspection
(``resource_server_caller``: the same failure budgets, 401 then 429) and learns only its own
document: nothing here takes an audience or a client id from the request.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from authserver import revocation
from authserver.audit.context import request_personal
from authserver.audit.services import audit_record
from authserver.http import NO_STORE
from authserver.introspection.endpoint import resource_server_caller
from authserver.notfound import response as not_found
from authserver.ratelimit.limiter import enforce, note
from clients.selectors import resource_metadata_document


def _json(data: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data), status=status, headers={"Content-Type": "application/json", **NO_STORE})


def _audit_refusal(request: HttpRequest, client_id: str | None) -> None:
    """A failed resource-server authentication within the failure budget: one audit event."""
    named = bool(client_id) and client_id[:100].isprintable() if client_id else False
    audit_record(event="resource_metadata.refused", outcome="failure",
                 actor=f"client:{client_id[:100]}" if client_id and named else "anonymous",
                 subject="endpoint:resource-metadata", details={"reason": "invalid_client"},
                 personal=request_personal(request))


def resource_metadata(request: HttpRequest) -> HttpResponse:
    if request.GET:
        return _json({"error": "invalid_request", "error_description": "This endpoint takes no parameters."}, 400)
    caller = resource_server_caller(request, {}, revocation.request_view(), realm="resource-metadata",
                                    refused=lambda client_id, _network: _audit_refusal(request, client_id))
    if isinstance(caller, HttpResponse):
        return caller
    note(request, enforce("resource_metadata.rs", caller["client_id"]))
    document = resource_metadata_document(client_pk=caller["id"])
    if document is None:  # pragma: no cover - a resource server always has an audience (a check constraint)
        return not_found()
    return _json(document)
