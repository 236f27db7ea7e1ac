"""FastAPI: ``Depends(require_scopes("ai.infer"))`` gives the route the verified Principal.

Use with :func:`install` (adds the ASGI middleware, which checks path aliases and serves the RFC
9728 metadata at the well-known URLs; routes without the dependency stay public unless
``authenticate=True``). The dependency reuses the middleware's verification when it ran, else
verifies itself; refusals are ``HTTPException`` carrying the
RFC 6750 status and headers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from authserver_rs.aliases import Routed
from authserver_rs.asgi import KIT, PRINCIPAL, ResourceServerMiddleware, client_ip
from authserver_rs.errors import Refusal
from authserver_rs.kit import ResourceServer
from authserver_rs.kit import require_scopes as check_scopes
from authserver_rs.principal import Principal


def install(app: FastAPI, kit: ResourceServer, *, authenticate: bool = False,
            exempt_paths: frozenset[str] = frozenset()) -> None:
    app.state.authserver_rs = kit
    app.add_middleware(ResourceServerMiddleware, kit=kit, authenticate=authenticate,
                       exempt_paths=exempt_paths)


async def _http_exception(refusal: Refusal, kit: ResourceServer) -> HTTPException:
    reply = await kit.refusal_async(refusal)
    headers = {k: v for k, v in reply.headers if k.lower() not in ("content-type", "content-length")}
    detail: Any = json.loads(reply.body) if reply.body else None
    return HTTPException(status_code=reply.status, detail=detail, headers=headers)


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        kit: ResourceServer = request.scope.get(KIT) or request.app.state.authserver_rs
        try:
            principal: Principal | None = request.scope.get(PRINCIPAL)
            if principal is None:
                principal = await kit.authorize_async(Routed(None, request.url.path),
                                                      request.headers.get("authorization"),
                                                      client_ip(kit, request.scope))
                request.state.principal = principal
            check_scopes(principal, scopes)
        except Refusal as refusal:
            raise await _http_exception(refusal, kit) from None
        return principal

    return dependency
