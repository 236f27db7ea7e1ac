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


def test_an_ai_api_built_with_the_kit_finds_everything_from_its_discovery_url(server: RunningServer) -> None:
    """Rotating mode end to end: the kit knows only its resource server's discovery URL; from it
    come the introspection, revocation-stream and path-key endpoints (all under the rotating
    prefix); a caller learns the API's current URL from the discovery call, is served, and is
    refused within a second of revoking its token."""
    import threading
    import time
    from wsgiref.simple_server import make_server

    from authserver_rs import Config, ResourceServer
    from authserver_rs.wsgi import ResourceServerMiddleware

    audience = "https://rotating-api.example.test"
    server.manage("scope", "create", "ai.chat", "--description", "Chat")
    rs = server.manage("client", "create", "--name", "Rotating API", "--type", "confidential",
                       "--grant", "client_credentials", "--resource-server", audience)
    caller = server.manage("client", "create", "--name", "Rotating caller", "--type", "confidential",
                           "--grant", "client_credentials", "--scope", "ai.chat", "--audience", audience)
    metadata_url = server.base_url + urlsplit(str(rs["discovery_url"])).path
    kit = ResourceServer(Config(client_id=str(rs["client_id"]), client_secret=str(rs["client_secret"]),
                                metadata_url=metadata_url, rotating_paths=True, ca_file=server.cert, cache_ttl=60))

    def api(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"ok"]

    httpd = make_server("127.0.0.1", 0, ResourceServerMiddleware(api, kit, scopes=("ai.chat",)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        server.manage("client", "update", str(rs["client_id"]), "--rotating-paths", "on",
                      "--public-url", f"http://127.0.0.1:{httpd.server_address[1]}")
        document = request(server, urlsplit(str(caller["discovery_url"])).path).json()
        assert all("/oauth/" not in document[name] for name in (
            "token_endpoint", "introspection_endpoint", "revocation_events_endpoint", "path_key_endpoint",
            "resource_discovery_endpoint"))
        auth = (str(caller["client_id"]), str(caller["client_secret"]))
        token = request(server, urlsplit(document["token_endpoint"]).path, "POST", auth=auth,
                        data={"grant_type": "client_credentials", "resource": audience}).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        found = request(server, urlsplit(document["resource_discovery_endpoint"]).path,
                        params={"audience": audience}, headers=bearer)
        assert found.status_code == 200, found.text
        url = found.json()["url"] + "v1/chat"
        kit.start()
        deadline = time.monotonic() + 20
        while not kit.stream.healthy():
            assert time.monotonic() < deadline, "the kit's stream did not come up through the rotating path"
            time.sleep(0.05)
        assert requests.get(url, headers=bearer, timeout=10).status_code == 200
        assert requests.get(url.replace(found.json()["url"], f"http://127.0.0.1:{httpd.server_address[1]}/"),
                            headers=bearer, timeout=10).status_code == 404  # no alias, no API
        revoked = request(server, urlsplit(document["revocation_endpoint"]).path, "POST", auth=auth,
                          data={"token": token})
        assert revoked.status_code == 200
        returned = time.monotonic()
        while requests.get(url, headers=bearer, timeout=10).status_code == 200:
            assert time.monotonic() - returned < 1.0, "the revoked token was still served after a second"
            time.sleep(0.02)
        assert requests.get(url, headers=bearer, timeout=10).status_code == 401
    finally:
        httpd.shutdown()
        kit.close()
