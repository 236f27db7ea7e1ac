"""RFC 6750 §3 answers for refusals: status, headers and a small JSON body.

- no credential: 401 with ``WWW-Authenticate: Bearer realm="…"`` and no error attribute (§3.1);
- malformed request: 400 ``invalid_request``; inactive credential: 401 ``invalid_token``;
- missing scope: 403 ``insufficient_scope`` with ``scope="…"`` naming what is needed (§3.1);
- rate-limited API key: 429 with ``Retry-After`` (RFC 6585 §4, RFC 9110 §10.2.3);
- authorization server unreachable: 503 (fail closed);
- unknown path alias: a bare 404 (no body, no ``WWW-Authenticate``: nothing about what is here).

401 and 403 challenges also carry ``resource_metadata="…"`` (RFC 9728 §5.1) when the kit knows
this API's protected-resource metadata URL: where a client finds the authorization server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from authserver_rs.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    NoCredential,
    NotFound,
    RateLimited,
    Refusal,
    Unavailable,
)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(realm: str, error: str | None = None, **attributes: str) -> str:
    parts = [f"realm={_quoted(realm)}"]
    if error:
        parts.append(f"error={_quoted(error)}")
    parts.extend(f"{name}={_quoted(value)}" for name, value in attributes.items())
    return "Bearer " + ", ".join(parts)


def _json(status: int, body: dict[str, str | int], *headers: tuple[str, str]) -> HttpAnswer:
    return HttpAnswer(status, (("Content-Type", "application/json"), ("Cache-Control", "no-store"), *headers),
                      json.dumps(body).encode())


def answer(refusal: Refusal, *, realm: str, resource_metadata: str | None = None) -> HttpAnswer:
    extra = {"resource_metadata": resource_metadata} if resource_metadata else {}
    if isinstance(refusal, NotFound):
        return not_found()
    if isinstance(refusal, NoCredential):
        return _json(401, {"error": "unauthorized"}, ("WWW-Authenticate", _challenge(realm, **extra)))
    if isinstance(refusal, InvalidRequest):
        return _json(400, {"error": "invalid_request"}, ("WWW-Authenticate", _challenge(realm, "invalid_request")))
    if isinstance(refusal, InsufficientScope):
        scope = " ".join(refusal.needed)
        return _json(403, {"error": "insufficient_scope", "scope": scope},
                     ("WWW-Authenticate", _challenge(realm, "insufficient_scope", scope=scope, **extra)))
    if isinstance(refusal, RateLimited):
        return _json(429, {"error": "rate_limited", "retry_after": refusal.retry_after},
                     ("Retry-After", str(refusal.retry_after)))
    if isinstance(refusal, Unavailable):
        return unavailable()
    assert isinstance(refusal, InvalidToken) or type(refusal) is Refusal
    return _json(401, {"error": "invalid_token"}, ("WWW-Authenticate", _challenge(realm, "invalid_token", **extra)))


def not_found() -> HttpAnswer:
    return HttpAnswer(404, (("Content-Length", "0"),), b"")


def method_not_allowed() -> HttpAnswer:
    return _json(405, {"error": "method_not_allowed"}, ("Allow", "GET, HEAD"))


def unavailable() -> HttpAnswer:
    return _json(503, {"error": "temporarily_unavailable"}, ("Retry-After", "1"))


def metadata_document(body: bytes) -> HttpAnswer:
    """RFC 9728 §3.2: the document as JSON; public, so any origin may read it (browser-based clients)."""
    return HttpAnswer(200, (("Content-Type", "application/json"), ("Cache-Control", "max-age=300"),
                            ("Access-Control-Allow-Origin", "*")), body)
