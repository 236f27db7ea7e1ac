"""The WSGI application: machine endpoints on a lean Django handler, everything else as usual;
and the fail-closed boundary both stacks share.

Fail closed: when a dependency that grants access (the database, Redis, the counter store, a
rate-limit store whose policy fails closed) is down, every request answers ``503
temporarily_unavailable`` with ``Retry-After``, never a guess (:class:`FailClosedMiddleware`,
first in ``settings.MIDDLEWARE``).

Resource servers and clients call ``/oauth/introspect``, ``/oauth/token`` and ``/oauth/revoke``
with credentials in the request, never with a browser session: those views are CSRF-exempt and
read no session, user or messages. Running them through the session, CSRF, authentication and
messages middleware (and WhiteNoise's static-file lookup) costs time on every call for nothing,
so they go to a second ``WSGIHandler`` whose middleware is ``settings.MIDDLEWARE`` minus those.
What remains (fail closed, security headers, common, clickjacking) is the same code, so the
responses are byte-for-byte what the full stack sends (tests/bench/test_machine_handler.py).

Persistent connections are health-checked (``SELECT 1``) by Django at the first query of every
request, a second round trip on a path that needs one. Here the check is skipped while the
connection served a request that queried it without a database error less than
``HEALTH_CHECK_WINDOW`` seconds ago and the server has not hung up on it (a non-blocking look at
the socket); an idle connection is still checked. If the server went away inside that window
anyway, the request's first statement is retried once on a fresh connection when nothing can have
happened yet (a ``SELECT`` outside any transaction: :mod:`authserver.db.postgresql`); otherwise the
request fails closed (503) and the connection is discarded at the end of the request.

A database error of any kind (a lock or statement timeout included: ``AUTHSERVER_DB_LOCK_TIMEOUT``,
``AUTHSERVER_DB_STATEMENT_TIMEOUT``) is a dependency failure: 503 with ``Retry-After``, never a
hang and never a 500.

Both stacks answer with a neutral ``Server`` header (:data:`SERVER_HEADER`: the web server's own
would name it) and give every request an id (``X-Request-ID``: the caller's if it is short and of a safe
charset, else a fresh one), send it back in the response, and time the request: one
``events.request_served`` per request, which authserver.observability turns into the JSON access
line and the request metrics off the request path (``emit`` is a ``deque.append``: no project code
runs, so the cached introspection still enters the same six modules).

Machine endpoints (the OAuth endpoints, the metadata document, the management API) answer every
error as an RFC 6749 §5.2 error object with ``Cache-Control: no-store``, Django's own included:
:func:`allow_methods` answers a method the endpoint does not take with ``405`` and ``Allow`` (``OPTIONS``
included, as on the management API) before CSRF or the view runs, and the URL map's error
handlers (:func:`bad_request` and the others) answer oversized bodies (``413``), too many fields,
bad hosts and uncaught errors there as JSON; elsewhere they are plain pages
(``authserver.accounts.views.errors``, which calls these for the machine endpoints). An unknown
path gets the one uniform 404 everywhere (:mod:`authserver.notfound`, issue 15).

``AUTHSERVER_BENCH_BASELINE=1`` (the bench only) adds ``/bench/bare``: a bare JSON view on the
same lean handler, the baseline every ratio in ``bench/`` is measured against. It is never
mounted otherwise.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_protect
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authserver import endpoints, events, netaddr, notfound
from authserver.counters import CountersUnavailable
from authserver.ratelimit.limiter import LimiterUnavailable
from authserver.revocation import GenerationUnavailable

log = logging.getLogger("authserver.failclosed")

# redis is always installed (it is only used when REDIS_URL is set).
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseError, RedisConnectionError, RedisTimeoutError, CountersUnavailable, LimiterUnavailable,
    GenerationUnavailable,
)

MACHINE_PATHS = frozenset({"/oauth/introspect", "/oauth/token", "/oauth/revoke", "/oauth/path-key", "/oauth/discovery",
                           "/oauth/revocations", "/oauth/resource-metadata",
                           "/oauth/register", "/livez", "/readyz", "/healthz"})
# The same endpoints under a rotating prefix (authserver.endpoints): "/<prefix>/<one of these>".
ROTATING_MACHINE_ENDPOINTS = frozenset({"introspect", "token", "revoke", "path-key", "discovery", "revocations",
                                        "resource-metadata", "register"})
# Machine endpoints with a parameter in the path (RFC 7592's client configuration endpoint): "<this><id>".
MACHINE_PATH_PREFIXES = ("register/",)
BASELINE_PATH = "/bench/bare"

# Middleware that only browsers need: sessions, CSRF, authentication, messages, static files, and
# the pages' Content-Security-Policy (the machine endpoints answer JSON, which carries none), the
# pages' language and their error pages.
BROWSER_ONLY_MIDDLEWARE = frozenset({
    "authserver.csp.PageCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "authserver.staff.middleware.StaffGateMiddleware",
    "authserver.audit.middleware.AuditScopeMiddleware",
    "authserver.accounts.middleware.BrowserErrorPagesMiddleware",
    "authserver.accounts.middleware.PageLocaleMiddleware",
})

HEALTH_CHECK_WINDOW = 1.0

# A request id from the caller (a proxy, a resource server) is kept only if it is short and made of
# characters that cannot break a log line or a header; anything else gets a fresh one.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# The Server header names no software (ASVS 14.3.3): granian adds "server: granian" to any answer
# that has none, and has no switch to drop it, so every answer of ours carries this neutral value.
SERVER_HEADER = "-"
_request_served = events.request_served.emit

_load_lock = threading.Lock()
_recent = threading.local()


def baseline_enabled() -> bool:
    return os.environ.get("AUTHSERVER_BENCH_BASELINE", "") == "1"


def machine_middleware() -> list[str]:
    return [path for path in settings.MIDDLEWARE if path not in BROWSER_ONLY_MIDDLEWARE]


class ServedHandler(WSGIHandler):
    """A ``WSGIHandler`` that tags each request with its id and reports it served (both stacks)."""

    def get_response(self, request: Any) -> Any:
        started = time.perf_counter()
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if supplied and REQUEST_ID_PATTERN.fullmatch(supplied) else os.urandom(16).hex()
        request.request_id = request_id
        response = super().get_response(request)
        response["X-Request-ID"] = request_id
        response["Server"] = SERVER_HEADER
        match, meta = request.resolver_match, request.META
        _request_served((request.method, match.view_name if match is not None else None, response.status_code,
                         time.perf_counter() - started, getattr(request, "telemetry", None),
                         # who the client is (trusted proxies) is worked out off the request path
                         (meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), meta.get("HTTP_FORWARDED")),
                         request_id))
        return response


class MachineHandler(ServedHandler):
    """A ``WSGIHandler`` whose middleware chain is :func:`machine_middleware`."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; give it the lean list for the
        # duration of the build (once, at start-up, before any request).
        with _load_lock:
            full = settings.MIDDLEWARE
            settings.MIDDLEWARE = machine_middleware()
            try:
                super().load_middleware(is_async)
            finally:
                settings.MIDDLEWARE = full

    def get_response(self, request: Any) -> Any:
        from django.db import connection  # the thread's connection, looked up per request

        if baseline_enabled():
            request.urlconf = "bench.baseline_urls"
        # health_check_done: Django's (5.1+, CONN_HEALTH_CHECKS); django-stubs lack the attribute.
        raw = connection.connection
        skip = (raw is not None and not connection.health_check_done  # type: ignore[attr-defined]
                and time.monotonic() - getattr(_recent, "ok_at", -1e9) < HEALTH_CHECK_WINDOW
                and not _peer_closed(raw))
        if skip:
            connection.health_check_done = True  # type: ignore[attr-defined]
        # Unchecked, the request's first statement may find the server gone after all (it restarted
        # after the look above): authserver.db.postgresql then runs it once more on a fresh
        # connection, if nothing can have happened yet.
        connection.retry_first_statement = skip  # type: ignore[attr-defined]
        queried: list[bool] = []

        def note_query(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
            queried.append(True)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(note_query):
            response = super().get_response(request)
        # Only a request that really used the connection vouches for it: an answer served from the
        # in-process cache says nothing about a server that may have restarted meanwhile.
        if queried and connection.connection is not None and not connection.errors_occurred:
            _recent.ok_at = time.monotonic()
        return response


def _peer_closed(raw: Any) -> bool:
    """Has the server hung up on this idle connection (a restart, a terminated backend)?

    An idle connection has nothing to read unless the server sent its last words (a FATAL notice)
    and closed the socket: a non-blocking look, no round trip. Anything odd counts as closed, and
    Django's health check (``SELECT 1``) then decides.
    """
    fileno = getattr(raw, "fileno", None)
    if fileno is None:
        return False  # SQLite: a file, no server to go away
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except Exception:  # noqa: BLE001 - a closed socket, or psycopg's "the connection is closed"
        return True
    return bool(readable)


class Dispatcher:
    """Route by path: machine endpoints to the lean handler, the rest to the full one."""

    def __init__(self) -> None:
        self.full = ServedHandler()
        self.machine = MachineHandler()
        self.machine_paths = MACHINE_PATHS | ({BASELINE_PATH} if baseline_enabled() else set())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        machine = (path in self.machine_paths or path.startswith(f"/{endpoints.FIXED_ROOT}{MACHINE_PATH_PREFIXES[0]}")
                   or rotating_machine_path(path))
        handler = self.machine if machine else self.full
        # X-Forwarded-Proto decides whether Django believes the request came over HTTPS (secure
        # cookies, redirects); with AUTHSERVER_TRUSTED_PROXIES set only those proxies may send it.
        if "HTTP_X_FORWARDED_PROTO" in environ and not netaddr.forwarded_proto_believed(environ):
            del environ["HTTP_X_FORWARDED_PROTO"]
        return handler(environ, start_response)


def rotating_machine_path(path: str) -> bool:
    """``/<prefix>/token`` and the like in rotating mode, by shape only: no key, no clock, no query.
    Whether the prefix is accepted is the URL map's decision; a wrong one gets the uniform 404,
    the same bytes on either stack."""
    if not endpoints.rotating():
        return False
    parts = endpoints.split(path)
    return parts is not None and (parts[1] in ROTATING_MACHINE_ENDPOINTS or parts[1].startswith(MACHINE_PATH_PREFIXES))


def unavailable() -> HttpResponse:
    response = JsonResponse(
        {"error": "temporarily_unavailable", "error_description": "The server is temporarily unavailable."},
        status=503,
    )
    response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


class UniformNotFoundMiddleware:
    """First in ``settings.MIDDLEWARE`` on both stacks: the uniform 404 (authserver.notfound) leaves
    exactly as built, whatever a middleware added on the way out (a CSP, ``Vary``, a language, a
    cookie), so the full and the lean stack answer alike. HSTS, when sent, is sent on every answer
    over TLS: it tells nothing about the path, so it stays."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 404 or not getattr(response, "uniform_404", False):
            return response
        fresh = notfound.response()
        hsts = response.get("Strict-Transport-Security")
        if hsts:
            fresh["Strict-Transport-Security"] = hsts
        return fresh


class FailClosedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except DEPENDENCY_ERRORS as exc:
            return _refuse(request, exc)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DEPENDENCY_ERRORS):
            return _refuse(request, exception)
        return None


def _dependency(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        return "database"
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "redis"
    if isinstance(exc, GenerationUnavailable):
        return "revocation_store"  # Redis or the file in the data directory
    return "counter_store"  # Redis or the embedded SQLite file, behind the counter store and the limiter


def _refuse(request: HttpRequest, exc: BaseException) -> HttpResponse:
    log.error("dependency unavailable", extra={"error": type(exc).__name__, "path": request.path})
    events.dependency_failed.emit(_dependency(exc))
    return unavailable()


# -- Methods and JSON errors (RFC 6749 §5.2, RFC 9110 §15.5.6) -----------------------------------

# Where a client, never a browser, is on the other end: errors are JSON error objects, not pages.
JSON_ERROR_PATHS = frozenset({"/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/path-key",
                              "/oauth/discovery", "/oauth/revocations", "/oauth/register",
                              "/.well-known/oauth-authorization-server"})


def wants_json(request: HttpRequest) -> bool:
    path = request.path_info
    return (path in JSON_ERROR_PATHS or path.startswith(f"/{settings.API_PATH}/") or rotating_machine_path(path)
            or path.startswith(("/d/", "/oauth/register/")))


def json_error(status: int, error: str, description: str, **headers: str) -> HttpResponse:
    """An RFC 6749 §5.2 error object, never cached (§5.1)."""
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in headers.items():
        response[name] = value
    return response


def allow_methods(view: Callable[..., HttpResponse], *methods: str,
                  browser: bool = False) -> Callable[..., HttpResponse]:
    """``view`` answering only ``methods``; any other gets ``405`` with ``Allow`` (RFC 9110 §15.5.6).

    The method is decided first, before the CSRF check: a PUT to a form endpoint is a method the
    endpoint does not have (405), not a forged form (403). A ``browser`` endpoint then gets its
    CSRF check from ``csrf_protect`` (the same check the middleware would make); the others are
    machine endpoints, which take credentials in the request and answer errors as JSON.

    ``OPTIONS`` is one of those other methods, on every endpoint alike, as on the management API
    (authserver.api_auth): the metadata document (RFC 8414) and the OpenAPI schema describe the
    endpoints, and no endpoint takes cross-origin requests that would need a CORS preflight.
    """
    allow = ", ".join(methods)
    inner = csrf_protect(view) if browser else view

    @functools.wraps(view)
    def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method in methods:
            return inner(request, *args, **kwargs)
        if browser:
            response: HttpResponse = HttpResponseNotAllowed(methods)
        else:
            response = json_error(405, "invalid_request", f"Method not allowed; use {' or '.join(methods)}.")
        response["Allow"] = allow
        response["Cache-Control"] = "no-store"
        return response

    endpoint.csrf_exempt = True  # type: ignore[attr-defined]  # checked inside, after the method
    return endpoint


# The URL map's error handlers (authserver.urls): JSON on machine endpoints, Django's pages elsewhere.

def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        # RFC 9110 §15.5.14 (DATA_UPLOAD_MAX_MEMORY_SIZE); Django itself answers a bare 400.
        return json_error(413, "invalid_request", "The request body is too large.")
    # Too many fields (DATA_UPLOAD_MAX_NUMBER_FIELDS), a disallowed host, a malformed body.
    return json_error(400, "invalid_request", "The request is malformed.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not wants_json(request):
        return defaults.permission_denied(request, exception)
    return json_error(403, "access_denied", "The request is not allowed.")


def server_error(request: HttpRequest) -> HttpResponse:
    if not wants_json(request):
        return defaults.server_error(request)
    return json_error(500, "server_error", "The server could not answer the request.")
