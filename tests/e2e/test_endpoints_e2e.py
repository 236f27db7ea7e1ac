"""The real server (``manage.py serve``: granian, TLS) in ``AUTHSERVER_ENDPOINTS=rotating`` mode
(issue 15): a client finds the endpoints at its discovery URL and uses them; probing the
well-known paths of common servers, random strings, an expired prefix and the fixed paths yields
byte-identical 404s (status, headers but Date, body), with no header naming the software."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.server import ROOT, RunningServer, start_server

pytestmark = pytest.mark.e2e

SOFTWARE = ("granian", "gunicorn", "uvicorn", "werkzeug", "python", "django", "wsgiserver")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("e2e-endpoints")), "--no-beat", "--no-worker", "--workers", "1",
                           env_overrides={"AUTHSERVER_ENDPOINTS": "rotating"})
    try:
        yield running
    finally:
        assert running.stop() == 0, "".join(running.output)[-3000:]


def request(server: RunningServer, path: str, method: str = "GET", **kwargs: object) -> requests.Response:
    headers = {"X-Request-ID": "probe", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, server.base_url + path, headers=headers, verify=server.cert,
                            allow_redirects=False, timeout=30, **kwargs)  # type: ignore[arg-type]


def expired_prefix(server: RunningServer) -> str:
    """The prefix of two windows ago, from the server's own key (its database)."""
    code = ("from authserver import endpoints, paths; "
            "print(paths.prefix(endpoints._key(), 'oauth', paths.current_window(endpoints.window_seconds()) - 2))")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=server.env,
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_a_client_finds_and_uses_the_rotating_endpoints(server: RunningServer) -> None:
    created = server.manage("client", "create", "--name", "svc", "--type", "confidential",
                            "--grant", "client_credentials")
    discovery = urlsplit(str(created["discovery_url"])).path
    metadata = request(server, discovery)
    assert metadata.status_code == 200, metadata.text
    document = metadata.json()
    token_path = urlsplit(document["token_endpoint"]).path
    assert not token_path.startswith("/oauth/") and document["endpoints_valid_until"] > 0
    issued = request(server, token_path, "POST", data={"grant_type": "client_credentials"},
                     auth=(str(created["client_id"]), str(created["client_secret"])))
    assert issued.status_code == 200, issued.text
    assert request(server, "/oauth/token", "POST", data={"grant_type": "client_credentials"},
                   auth=(str(created["client_id"]), str(created["client_secret"]))).status_code == 404


def test_probes_answer_byte_identical_404s(server: RunningServer) -> None:
    expired = expired_prefix(server)
    probes = ["/oauth/token", "/o/token/", "/admin/", "/.well-known/openid-configuration",
              "/.well-known/oauth-authorization-server", "/api/v1/", "/" + secrets.token_urlsafe(10),
              f"/{expired}/token", f"/{expired}/introspect", "/d/nothing", "/oauth/introspect"]
    answers = {}
    for probe in probes:
        for method in ("GET", "POST"):
            response = request(server, probe, method)
            headers = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() != "date")
            answers[(probe, method)] = (response.status_code, headers, response.content)
    first = answers[("/oauth/token", "GET")]
    assert first[0] == 404
    assert {key: value for key, value in answers.items() if value != first} == {}
    headers = dict(first[1])
    assert "set-cookie" not in headers
    assert not any(name in value.lower() for value in headers.values() for name in SOFTWARE), headers
