"""Fixtures for Client ID Metadata Documents: CIMD on, a document server trusted through a throwaway
CA, a forbidden listener, and a record of every connection the fetcher opens."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.core.cache import cache

from tests.factories import REDIRECT_URI, RS_AUDIENCE, ScopeFactory
from tests.oauth.cimd.docserver import DocumentServer, Listener, json_answer, make_ca

REGISTRABLE = ["ai.infer", "mcp.tools"]


@pytest.fixture(scope="session")
def cimd_ca(tmp_path_factory: Any) -> tuple[Any, Any, Any]:
    return make_ca(tmp_path_factory.mktemp("cimd-ca"))


@pytest.fixture
def cimd_on(settings: Any, cimd_ca: Any, db: Any) -> Any:
    """CIMD on, loopback allowed (the document server is on 127.0.0.1), our CA trusted."""
    settings.CIMD = "on"
    settings.CIMD_ALLOW_PRIVATE = True
    settings.CIMD_CA_FILE = cimd_ca[0]
    settings.REGISTRABLE_SCOPES = list(REGISTRABLE)
    settings.REGISTRABLE_AUDIENCES = [RS_AUDIENCE]
    for name in [*REGISTRABLE, "ai.admin"]:
        ScopeFactory(name=name)
    cache.clear()  # the refusal backoff
    yield settings
    cache.clear()


@pytest.fixture
def docs(cimd_ca: Any) -> Any:
    server = DocumentServer(cimd_ca[1], cimd_ca[2])
    yield server
    server.close()


@pytest.fixture
def forbidden() -> Any:
    listener = Listener("127.0.0.1")
    yield listener
    listener.close()


@pytest.fixture
def connects(monkeypatch: Any) -> list[tuple[str, int]]:
    """Every (address, port) the fetcher connects to, in order."""
    made: list[tuple[str, int]] = []
    original = socket.create_connection

    def recording(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr("authserver.oauth.cimd.fetcher.socket.create_connection", recording)
    return made


def document(url: str, **members: Any) -> dict[str, Any]:
    """A valid metadata document for ``url``."""
    return {"client_id": url, "client_name": "Agent Smith", "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", **members}


def serve(server: DocumentServer, path: str = "/agent.json", **members: Any) -> str:
    url = server.url(path)
    server.routes[path] = json_answer(document(url, **members), headers={"Cache-Control": "max-age=600"})
    return url
