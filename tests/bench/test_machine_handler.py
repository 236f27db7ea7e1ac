"""The WSGI application: machine endpoints on the lean handler answer exactly what the full stack
answers; the bench's baseline view exists only when the bench asks for it."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

from authserver import credentials, handlers
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db

# Headers that legitimately differ between two calls.
VOLATILE = {"date", "ratelimit", "ratelimit-policy", "x-request-id"}


def wsgi_call(app: Any, path: str, body: str = "", auth: str = "", method: str = "POST",
              **extra: str) -> tuple[int, dict, bytes]:
    raw = body.encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.url_scheme": "https", "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": io.StringIO(),
    }
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    environ.update(extra)  # more request headers, as WSGI names them (HTTP_ACCEPT=...)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {k.lower(): v for k, v in headers}

    # As django.test.Client does: the test's transaction must survive the request's signals.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = app(environ, start_response)
        content = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return captured["status"], captured["headers"], content


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("AUTHSERVER_BENCH_BASELINE", raising=False)
    return handlers.Dispatcher()


def test_machine_middleware_drops_only_browser_middleware(settings):
    lean = handlers.machine_middleware()
    assert not set(lean) & handlers.BROWSER_ONLY_MIDDLEWARE
    assert lean == [m for m in settings.MIDDLEWARE if m not in handlers.BROWSER_ONLY_MIDDLEWARE]
    assert "authserver.handlers.FailClosedMiddleware" in lean
    assert "django.middleware.security.SecurityMiddleware" in lean


def test_routes(app):
    assert handlers.MACHINE_PATHS == {"/oauth/introspect", "/oauth/token", "/oauth/revoke", "/oauth/path-key",
                                      "/oauth/discovery", "/oauth/revocations", "/oauth/register", "/oauth/resource-metadata",
                                      "/livez", "/readyz",
                                      "/healthz"}
    assert handlers.BASELINE_PATH not in app.machine_paths


def _same(a: tuple[int, dict, bytes], b: tuple[int, dict, bytes]) -> None:
    assert a[0] == b[0]
    assert {k: v for k, v in a[1].items() if k not in VOLATILE} == {k: v for k, v in b[1].items() if k not in VOLATILE}


def test_introspection_answers_like_the_full_stack(app, resource_server, service_client):
    rs, rs_secret = resource_server
    svc, svc_secret = service_client
    status, _, body = wsgi_call(app, "/oauth/token", "grant_type=client_credentials&scope=ai.infer",
                                basic_auth(svc.client_id, svc_secret))
    assert status == 200, body
    import json

    token = json.loads(body)["access_token"]
    auth = basic_auth(rs.client_id, rs_secret)
    for value in (token, credentials.mint("at"), "garbage"):
        lean = wsgi_call(app, "/oauth/introspect", f"token={value}", auth)
        full = wsgi_call(app.full, "/oauth/introspect", f"token={value}", auth)
        _same(lean, full)
        assert json.loads(lean[2]) == json.loads(full[2])
    assert json.loads(wsgi_call(app, "/oauth/introspect", f"token={token}", auth)[2])["active"] is True
    # Errors too: no credentials, GET, parameters in the query string.
    _same(wsgi_call(app, "/oauth/introspect", f"token={token}"), wsgi_call(app.full, "/oauth/introspect",
                                                                           f"token={token}"))
    _same(wsgi_call(app, "/oauth/introspect", method="GET"), wsgi_call(app.full, "/oauth/introspect", method="GET"))


def test_token_and_revocation_answer_like_the_full_stack(app, service_client):
    svc, secret = service_client
    auth = basic_auth(svc.client_id, secret)
    lean = wsgi_call(app, "/oauth/token", "grant_type=client_credentials&scope=ai.infer", auth)
    full = wsgi_call(app.full, "/oauth/token", "grant_type=client_credentials&scope=ai.infer", auth)
    _same(lean, full)
    assert lean[1]["content-type"] == "application/json" and lean[1]["cache-control"] == "no-store"
    _same(wsgi_call(app, "/oauth/token", "grant_type=password&username=a&password=b", auth),
          wsgi_call(app.full, "/oauth/token", "grant_type=password&username=a&password=b", auth))
    import json

    token = json.loads(lean[2])["access_token"]
    _same(wsgi_call(app, "/oauth/revoke", f"token={token}", auth), wsgi_call(app.full, "/oauth/revoke",
                                                                             f"token={token}", auth))


def test_machine_endpoints_set_no_cookies(app, service_client):
    svc, secret = service_client
    _, headers, _ = wsgi_call(app, "/oauth/token", "grant_type=client_credentials", basic_auth(svc.client_id, secret))
    assert "set-cookie" not in headers and "vary" not in headers


def test_baseline_view_only_when_the_bench_asks(monkeypatch, app):
    status, _, _ = wsgi_call(app, handlers.BASELINE_PATH, "x=1")
    assert status == 404
    monkeypatch.setenv("AUTHSERVER_BENCH_BASELINE", "1")
    bench_app = handlers.Dispatcher()
    status, headers, body = wsgi_call(bench_app, handlers.BASELINE_PATH, "x=1")
    assert status == 200 and body == b'{"active": false}' and headers["cache-control"] == "no-store"
    assert wsgi_call(bench_app, "/livez", method="GET")[0] == 200


def test_health_check_skipped_only_right_after_a_good_request(app, monkeypatch):
    connection.ensure_connection()
    connection.health_check_done = False
    monkeypatch.setattr(handlers._recent, "ok_at", time.monotonic(), raising=False)
    seen: list[bool] = []
    original = handlers.WSGIHandler.get_response

    def spy(self: Any, request: Any) -> Any:
        seen.append(connection.health_check_done)
        return original(self, request)

    monkeypatch.setattr(handlers.WSGIHandler, "get_response", spy)
    wsgi_call(app, "/oauth/introspect", "token=x")
    assert seen == [True]
    connection.health_check_done = False
    monkeypatch.setattr(handlers._recent, "ok_at", time.monotonic() - handlers.HEALTH_CHECK_WINDOW - 1)
    wsgi_call(app, "/oauth/introspect", "token=x")
    assert seen == [True, False]


def test_a_connection_whose_fileno_raises_counts_as_closed():
    """psycopg raises OperationalError ("the connection is closed"), not OSError, from fileno() of a
    connection the server closed: the handler then lets Django's health check decide, never a 500."""
    from django.db import OperationalError

    from authserver.handlers import _peer_closed

    class Closed:
        def fileno(self) -> int:
            raise OperationalError("the connection is closed")

    class Idle:
        def fileno(self) -> int:
            import socket

            self.pair = socket.socketpair()
            return self.pair[0].fileno()

    assert _peer_closed(Closed()) is True
    assert _peer_closed(Idle()) is False
    assert _peer_closed(object()) is False  # SQLite: no socket
