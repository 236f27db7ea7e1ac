"""WSGI middleware: strip and check the path alias, verify the bearer credential, answer per RFC 6750.

The verified :class:`~authserver_rs.principal.Principal` is ``environ["authserver_rs.principal"]``
(None on an exempt path). The alias moves from ``PATH_INFO`` to the end of ``SCRIPT_NAME``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from authserver_rs.errors import Refusal
from authserver_rs.kit import ResourceServer
from authserver_rs.rfc6750 import HttpAnswer

PRINCIPAL = "authserver_rs.principal"
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def header_environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class ResourceServerMiddleware:
    def __init__(self, app: WSGIApp, kit: ResourceServer, *, scopes: tuple[str, ...] = (),
                 exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.kit = kit
        self.scopes = scopes
        self.exempt_paths = exempt_paths
        self._forwarded = header_environ_key(kit.config.client_ip_header) if kit.config.client_ip_header else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        kit = self.kit
        served = kit.well_known(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/")
        if served is not None:  # RFC 9728 metadata: public, before aliases and credentials
            return _reply(start_response, served)
        try:
            routed = kit.route(environ.get("PATH_INFO") or "/")
            principal = None
            if routed.per_client or routed.rest not in self.exempt_paths:
                client_ip = kit.client_ip(environ.get("REMOTE_ADDR"),
                                          environ.get(self._forwarded) if self._forwarded else None)
                principal = kit.authorize(routed, environ.get("HTTP_AUTHORIZATION"), client_ip, self.scopes)
        except Refusal as refusal:
            return _reply(start_response, kit.refusal(refusal))
        if routed.alias is not None:
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + routed.alias
            environ["PATH_INFO"] = routed.rest
        environ[PRINCIPAL] = principal
        return self.app(environ, start_response)


def _reply(start_response: StartResponse, reply: HttpAnswer) -> Iterable[bytes]:
    start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", list(reply.headers))
    return [reply.body]
