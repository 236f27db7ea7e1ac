"""Django: a middleware (aliases and, unless exempt, verification) and a ``require_scopes`` decorator.

Configure with ``AUTHSERVER_RS = {...}`` in settings (the :class:`~authserver_rs.config.Config`
fields, plus ``exempt_paths`` and ``authenticate``). The verified Principal is ``request.principal``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from authserver_rs.aliases import Routed
from authserver_rs.config import Config
from authserver_rs.errors import Refusal
from authserver_rs.kit import ResourceServer
from authserver_rs.kit import require_scopes as check_scopes
from authserver_rs.rfc6750 import HttpAnswer

_OPTIONS = ("exempt_paths", "authenticate")
_lock = threading.Lock()
_kit: ResourceServer | None = None


def get_kit() -> ResourceServer:
    """The process's ResourceServer, built once from ``settings.AUTHSERVER_RS``."""
    global _kit
    with _lock:
        if _kit is None:
            options = {k: v for k, v in dict(settings.AUTHSERVER_RS).items() if k not in _OPTIONS}
            if "trusted_proxies" in options:
                options["trusted_proxies"] = tuple(options["trusted_proxies"])
            _kit = ResourceServer(Config(**options))
        return _kit


def set_kit(kit: ResourceServer | None) -> None:
    """Use ``kit`` instead of building one from settings (tests, custom transports)."""
    global _kit
    with _lock:
        _kit = kit


def _response(refusal: Refusal, kit: ResourceServer) -> HttpResponse:
    return _http(kit.refusal(refusal))


def _http(reply: HttpAnswer) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        response[name] = value
    return response


def _client_ip(kit: ResourceServer, request: Any) -> str | None:
    header = kit.config.client_ip_header
    forwarded = request.headers.get(header) if header else None
    return kit.client_ip(request.META.get("REMOTE_ADDR"), forwarded)


class ResourceServerMiddleware:
    def __init__(self, get_response: Callable[[Any], HttpResponse]) -> None:
        self.get_response = get_response
        options = dict(getattr(settings, "AUTHSERVER_RS", {}))
        self.exempt_paths = frozenset(options.get("exempt_paths", ()))
        self.authenticate = bool(options.get("authenticate", True))

    def __call__(self, request: Any) -> HttpResponse:
        kit = get_kit()
        served = kit.well_known(request.method or "GET", request.path_info)
        if served is not None:  # RFC 9728 metadata: public, before aliases and credentials
            return _http(served)
        try:
            routed = kit.route(request.path_info)
            request.principal = None
            if routed.per_client or (self.authenticate and routed.rest not in self.exempt_paths):
                request.principal = kit.authorize(routed, request.headers.get("Authorization"),
                                                  _client_ip(kit, request))
        except Refusal as refusal:
            return _response(refusal, kit)
        if routed.alias is not None:
            request.path_info = routed.rest
        return self.get_response(request)


def require_scopes(*scopes: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """View decorator: 401/403/429/503 per RFC 6750 unless the caller holds every scope."""
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
            kit = get_kit()
            try:
                principal = getattr(request, "principal", None)
                if principal is None:
                    principal = kit.authorize(Routed(None, request.path_info), request.headers.get("Authorization"),
                                              _client_ip(kit, request))
                    request.principal = principal
                check_scopes(principal, scopes)
            except Refusal as refusal:
                return _response(refusal, kit)
            return view(request, *args, **kwargs)
        return wrapped
    return decorate
