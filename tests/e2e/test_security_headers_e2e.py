"""The real server (``manage.py serve``: granian terminating TLS) and its security headers (issue
13, item 6): HSTS because it terminates TLS itself, a CSP on its HTML pages, and a ``Server``
header that names no software, on successes and errors alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from authserver.handlers import SERVER_HEADER
from tests.e2e.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

SOFTWARE = ("granian", "gunicorn", "uvicorn", "werkzeug", "python", "django", "wsgiserver")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # AUTHSERVER_HSTS_SECONDS unset (server_env keeps the test's environment, which has none).
    running = start_server(Path(tmp_path_factory.mktemp("e2e-headers")), "--no-beat", "--no-worker", "--workers", "1",
                           env_overrides={"AUTHSERVER_HSTS_SECONDS": "", "AUTHSERVER_ENV": ""})
    try:
        yield running
    finally:
        assert running.stop() == 0, "".join(running.output)[-3000:]


def get(server: RunningServer, path: str, method: str = "GET") -> requests.Response:
    return requests.request(method, server.base_url + path, verify=server.cert, allow_redirects=False, timeout=30)


# (path, method, expected status): successes, the uniform 404s, and error answers.
ANSWERS = [
    ("/livez", "GET", 200),
    ("/accounts/login/", "GET", 200),
    ("/.well-known/oauth-authorization-server", "GET", 200),
    ("/no/such/page", "GET", 404),
    ("/api/no-such-endpoint", "GET", 404),
    ("/oauth/token", "GET", 405),
    ("/oauth/introspect", "POST", 401),
    ("/accounts/login/", "POST", 403),  # no CSRF token: Django's 403 page
]


@pytest.mark.parametrize(("path", "method", "status"), ANSWERS)
def test_hsts_on_every_answer_over_https(server: RunningServer, path: str, method: str, status: int) -> None:
    response = get(server, path, method)
    assert response.status_code == status
    # RFC 6797 §6.1: a year; no includeSubDomains or preload outside production.
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(("path", "method", "status"), ANSWERS)
def test_no_server_header_names_the_software(server: RunningServer, path: str, method: str, status: int) -> None:
    response = get(server, path, method)
    assert response.status_code == status
    server_header = response.headers.get("Server", "")
    assert server_header == SERVER_HEADER
    assert not any(name in server_header.lower() for name in SOFTWARE)


def test_html_pages_carry_a_content_security_policy(server: RunningServer) -> None:
    # /no/such/page: the uniform 404 (issue 15), plain text with the same policy.
    for path, method in (("/accounts/login/", "GET"), ("/no/such/page", "GET"), ("/accounts/login/", "POST")):
        response = get(server, path, method)
        assert response.headers["Content-Type"].startswith("text/html" if response.status_code != 404 else "text/plain")
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
