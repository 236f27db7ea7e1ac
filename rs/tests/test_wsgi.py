"""The WSGI middleware and the RFC 6750 answers."""

from __future__ import annotations

from wsgiref.util import setup_testing_defaults

import pytest

from authserver_rs import paths
from authserver_rs.wsgi import PRINCIPAL, ResourceServerMiddleware

from .conftest import active
from .test_aliases import WINDOW, key_body


def app(environ, start_response):
    principal = environ[PRINCIPAL]
    start_response("200 OK", [("Content-Type", "text/plain")])
    who = principal.client_id if principal else "-"
    return [f"{environ.get('SCRIPT_NAME', '')}|{environ['PATH_INFO']}|{who}".encode()]


def call(middleware, path="/v1/infer", authorization=None, remote="192.0.2.1", **extra):
    environ = {"PATH_INFO": path, "REMOTE_ADDR": remote, **extra}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(middleware(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.fixture
def wsgi(fake, make_kit):
    fake.answers.update({"at_read": active(scope="ai.read"), "at_infer": active(scope="ai.infer ai.read"),
                         "ak_limited": {"active": False, "rate_limited": True, "retry_after": 9}})
    return ResourceServerMiddleware(app, make_kit(revocation_stream=False, realm="ai"), scopes=("ai.infer",),
                                    exempt_paths=frozenset({"/health"}))


@pytest.mark.parametrize(("authorization", "status", "challenge"), [
    (None, 401, 'Bearer realm="ai"'),
    ("Basic dXNlcjpwdw==", 401, 'Bearer realm="ai"'),
    ("Bearer at_unknown", 401, 'Bearer realm="ai", error="invalid_token"'),
    ("Bearer a b", 400, 'Bearer realm="ai", error="invalid_request"'),
    ("Bearer at_read", 403, 'Bearer realm="ai", error="insufficient_scope", scope="ai.infer"'),
])
def test_rfc6750_answers(wsgi, authorization, status, challenge):
    got, headers, _ = call(wsgi, authorization=authorization)
    assert (got, headers["WWW-Authenticate"]) == (status, challenge)
    assert headers["Cache-Control"] == "no-store"


def test_rate_limited_key_gets_429_with_retry_after(wsgi):
    status, headers, _ = call(wsgi, authorization="Bearer ak_limited")
    assert (status, headers["Retry-After"]) == (429, "9")


def test_server_unreachable_gets_503(wsgi, fake):
    fake.unreachable = True
    status, headers, _ = call(wsgi, authorization="Bearer at_infer")
    assert status == 503 and "WWW-Authenticate" not in headers


def test_principal_reaches_the_app_with_the_callers_address(wsgi, fake):
    assert call(wsgi, authorization="Bearer at_infer", remote="198.51.100.7") == (
        200, {"Content-Type": "text/plain"}, b"|/v1/infer|app-1")
    assert fake.introspections[-1]["client_ip"] == "198.51.100.7"


def test_exempt_path_needs_no_credential(wsgi):
    assert call(wsgi, path="/health")[2] == b"|/health|-"


def test_alias_is_stripped_and_unknown_alias_is_a_bare_404(fake, make_kit, clock):
    fake.path_key = key_body()
    fake.answers["at_infer"] = active(scope="ai.infer")
    middleware = ResourceServerMiddleware(app, make_kit(revocation_stream=False, rotating_paths=True))
    current = paths.prefix(bytes(range(32)), "rs", paths.window_of(clock.now, WINDOW))
    assert call(middleware, f"/{current}/v1/infer", "Bearer at_infer")[2] == f"/{current}|/v1/infer|app-1".encode()
    assert call(middleware, "/v1/infer", "Bearer at_infer") == (404, {"Content-Length": "0"}, b"")
    assert call(middleware, "/aaaaaaaaaaaaaaaa/v1/infer") == (404, {"Content-Length": "0"}, b"")
