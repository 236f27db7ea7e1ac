"""ASGI middleware: strip and check the path alias, verify the bearer credential, answer per RFC 6750.

The verified :class:`~authserver_rs.principal.Principal` is ``scope["state"]["principal"]``
(Starlette/FastAPI: ``request.state.principal``) and ``scope["authserver_rs.principal"]``. The alias
moves from ``path`` to the end of ``root_path``. With ``authenticate=False`` only aliases are
checked (per-client aliases still need the caller) and the FastAPI dependency verifies per route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from authserver_rs.errors import Refusal
from authserver_rs.kit import ResourceServer
from authserver_rs.rfc6750 import HttpAnswer

PRINCIPAL = "authserver_rs.principal"
KIT = "authserver_rs.kit"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: str) -> str | None:
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers") or ():
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


def client_ip(kit: ResourceServer, scope: Scope) -> str | None:
    peer = scope.get("client")
    forwarded = header(scope, kit.config.client_ip_header) if kit.config.client_ip_header else None
    return kit.client_ip(peer[0] if peer else None, forwarded)


async def send_refusal(send: Send, refusal: Refusal, kit: ResourceServer) -> None:
    await send_answer(send, await kit.refusal_async(refusal))


async def send_answer(send: Send, reply: HttpAnswer) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    if not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class ResourceServerMiddleware:
    def __init__(self, app: ASGIApp, kit: ResourceServer, *, scopes: tuple[str, ...] = (),
                 exempt_paths: frozenset[str] = frozenset(), authenticate: bool = True) -> None:
        self.app = app
        self.kit = kit
        self.scopes = scopes
        self.exempt_paths = exempt_paths
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kit = self.kit
        served = await kit.well_known_async(scope.get("method", "GET"), scope["path"])
        if served is not None:  # RFC 9728 metadata: public, before aliases and credentials
            await send_answer(send, served)
            return
        try:
            routed = await kit.route_async(scope["path"])
            principal = None
            if routed.per_client or (self.authenticate and routed.rest not in self.exempt_paths):
                principal = await kit.authorize_async(routed, header(scope, "authorization"), client_ip(kit, scope),
                                                      self.scopes if self.authenticate else ())
        except Refusal as refusal:
            await send_refusal(send, refusal, kit)
            return
        scope = dict(scope)
        if routed.alias is not None:
            scope["root_path"] = scope.get("root_path", "") + "/" + routed.alias
            scope["path"] = routed.rest
            raw = scope.get("raw_path")
            marker = b"/" + routed.alias.encode()
            if isinstance(raw, bytes) and raw.startswith(marker):  # keep the client's own encoding
                scope["raw_path"] = raw[len(marker):] or b"/"
            else:
                scope["raw_path"] = routed.rest.encode()
        scope[KIT] = kit
        scope[PRINCIPAL] = principal
        state = dict(scope.get("state") or {})
        state["principal"] = principal
        scope["state"] = state
        await self.app(scope, receive, send)
