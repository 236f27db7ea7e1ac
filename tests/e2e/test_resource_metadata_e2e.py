"""RFC 9728 end to end (issue 16): an AI API behind the kit, against the real server.

The kit knows only its resource server's discovery URL; from it comes ``resource_metadata_endpoint``.
A caller with no credential gets a 401 naming the API's protected-resource metadata URL, fetches the
document there without a credential, and follows ``authorization_servers`` to this server's RFC 8414
document: the discovery an MCP client performs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from authserver_rs import Config, ResourceServer
from authserver_rs.wsgi import ResourceServerMiddleware

from tests.e2e.server import RunningServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.once]  # like the kit's other e2e: the production storage

AUDIENCE = "https://mcp-api.example.test/mcp"
WELL_KNOWN = "/.well-known/oauth-protected-resource/mcp"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("rfc9728-data")), "--no-beat", "--no-worker")
    try:
        yield running
    finally:
        running.stop()


def test_a_client_finds_the_authorization_server_from_a_401(server: RunningServer) -> None:
    server.manage("scope", "create", "mcp.tools", "--description", "Use the tools")
    rs = server.manage("client", "create", "--name", "MCP API", "--type", "confidential",
                       "--grant", "client_credentials", "--resource-server", AUDIENCE, "--scope", "mcp.tools")
    caller = server.manage("client", "create", "--name", "MCP caller", "--type", "confidential",
                           "--grant", "client_credentials", "--scope", "mcp.tools", "--audience", AUDIENCE)
    kit = ResourceServer(Config(client_id=str(rs["client_id"]), client_secret=str(rs["client_secret"]),
                                metadata_url=server.base_url + urlsplit(str(rs["discovery_url"])).path,
                                ca_file=server.cert, revocation_stream=False))
    httpd = make_server("127.0.0.1", 0, ResourceServerMiddleware(_api, kit, scopes=("mcp.tools",)),
                        handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        refused = requests.get(f"{base}/mcp", timeout=10)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == (
            f'Bearer realm="api", resource_metadata="https://mcp-api.example.test{WELL_KNOWN}"')
        for path in (WELL_KNOWN, "/.well-known/oauth-protected-resource"):
            document = requests.get(base + path, timeout=10)
            assert document.status_code == 200, document.text
            assert document.json() == {
                "resource": AUDIENCE, "authorization_servers": [server.base_url],
                "bearer_methods_supported": ["header"], "scopes_supported": ["mcp.tools"],
                "resource_name": "MCP API"}
        issuer = document.json()["authorization_servers"][0]
        metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", verify=server.cert,
                                timeout=10).json()
        assert metadata["issuer"] == issuer
        assert metadata["resource_metadata_endpoint"] == f"{issuer}/oauth/resource-metadata"
        token = requests.post(metadata["token_endpoint"], data={
            "grant_type": "client_credentials", "scope": "mcp.tools", "resource": AUDIENCE,
        }, auth=(str(caller["client_id"]), str(caller["client_secret"])), verify=server.cert, timeout=10)
        served = requests.get(f"{base}/mcp", headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                              timeout=10)
        assert served.status_code == 200 and served.text == "ok"
        assert kit.metadata.fetches == 1  # fetched once, cached
    finally:
        httpd.shutdown()
        kit.close()
