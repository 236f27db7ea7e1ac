"""Fail closed: when a dependency that grants access is down, answer 503, never a guess."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from authserver.counters import CountersUnavailable

log = logging.getLogger("authserver.failclosed")

try:  # redis is only a dependency when REDIS_URL is set, but it is always installed.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
        DatabaseError, RedisConnectionError, RedisTimeoutError, CountersUnavailable,
    )
except ImportError:  # pragma: no cover
    _DEPENDENCY_ERRORS = (DatabaseError, CountersUnavailable)


def unavailable() -> HttpResponse:
    response = JsonResponse(
        {"error": "temporarily_unavailable", "error_description": "The server is temporarily unavailable."},
        status=503,
    )
    response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


class FailClosedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except _DEPENDENCY_ERRORS as exc:
            log.error("dependency unavailable", extra={"error": type(exc).__name__, "path": request.path})
            return unavailable()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, _DEPENDENCY_ERRORS):
            log.error("dependency unavailable", extra={"error": type(exception).__name__, "path": request.path})
            return unavailable()
        return None
