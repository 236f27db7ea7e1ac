"""An MCP server behind this authorization server, reached by the official MCP Python SDK (issue 16).

The MCP server is the SDK's own ``MCPServer`` (streamable HTTP), behind the resource-server kit's
ASGI middleware, served by uvicorn. The agent is the SDK's ``OAuthClientProvider`` over its own HTTP
client. Nothing is registered for the agent beforehand: it starts from the MCP server's 401, finds
this server through the RFC 9728 document the kit serves, registers itself (once through RFC 7591
dynamic registration, once with a Client ID Metadata Document this test serves over https),
runs authorization code + PKCE with ``resource`` (RFC 8707) through the real login and consent
pages (driven programmatically, as a browser would), calls a tool, refreshes, and is refused once
the user revokes the app on the connected-apps page.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import requests
import uvicorn
from authserver_rs import Config, ResourceServer
from authserver_rs.asgi import ResourceServerMiddleware
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from authserver.revocation import CHECK_INTERVAL
from tests.e2e.server import ADMIN_PASSWORD, RunningServer, free_port, start_server
from tests.e2e.test_oauth_e2e import _form as hidden_fields
from tests.oauth.cimd.docserver import DocumentServer, json_answer, make_ca

pytestmark = [pytest.mark.e2e, pytest.mark.once]  # PostgreSQL + Redis: the production path (CI pass 2)

SCOPE = "mcp.tools"


# -- The MCP server: the SDK's own, behind the kit ------------------------------------------------
def _mcp_app() -> Any:
    server = MCPServer("Forecasts")

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather for a city."""
        return f"Sunny in {city}"

    return server.streamable_http_app(stateless_http=True, json_response=True)


class _Uvicorn(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread of the test process, not the main thread
        pass


@dataclass
class MCPEndpoint:
    url: str
    kit: ResourceServer
    server: _Uvicorn


# -- Fixtures ------------------------------------------------------------------------------------
@dataclass
class Site:
    """The agent's website: serves its Client ID Metadata Document over https (a throwaway CA)."""

    documents: DocumentServer
    ca: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ca, leaf, key = make_ca(Path(tmp_path_factory.mktemp("cimd-site")))
    documents = DocumentServer(leaf, key)
    yield Site(documents=documents, ca=ca)
    documents.close()


@pytest.fixture(scope="module")
def mcp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, site: Site, mcp_port: int) -> Iterator[RunningServer]:
    port = free_port()
    running = start_server(
        Path(tmp_path_factory.mktemp("mcp-data")), "--no-beat", "--no-worker", port=port,
        env_overrides={
            # The SDK checks that the metadata names the issuer the resource pointed it to (RFC 8414 §3.3).
            "AUTHSERVER_ISSUER": f"https://127.0.0.1:{port}",
            "AUTHSERVER_DCR": "open",
            "AUTHSERVER_CIMD": "on",
            # The document site is on loopback with its own certificate: allowed here, never by default.
            "AUTHSERVER_CIMD_ALLOW_PRIVATE": "true",
            "AUTHSERVER_CIMD_CA_FILE": str(site.ca),
            "AUTHSERVER_REGISTRABLE_SCOPES": SCOPE,
            "AUTHSERVER_REGISTRABLE_AUDIENCES": f"http://127.0.0.1:{mcp_port}/mcp",
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def mcp_server(server: RunningServer, mcp_port: int) -> Iterator[MCPEndpoint]:
    url = f"http://127.0.0.1:{mcp_port}/mcp"
    server.manage("scope", "create", SCOPE, "--description", "Use the forecast tools")
    rs = server.manage("client", "create", "--name", "Forecasts MCP server", "--type", "confidential",
                       "--grant", "client_credentials", "--scope", SCOPE, "--resource-server", url)
    # The kit knows only its credentials and its discovery URL: it finds every endpoint from there.
    kit = ResourceServer(Config(client_id=str(rs["client_id"]), client_secret=str(rs["client_secret"]),
                                metadata_url=str(rs["discovery_url"]), ca_file=server.cert, cache_ttl=60.0))
    app = ResourceServerMiddleware(_mcp_app(), kit, scopes=(SCOPE,))
    web = _Uvicorn(uvicorn.Config(app, host="127.0.0.1", port=mcp_port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    kit.start()
    deadline = time.monotonic() + 20
    while not web.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    while not kit.stream.healthy():  # with its stream up the kit caches, so a revocation must reach it
        assert time.monotonic() < deadline, "the kit's revocation stream did not come up"
        time.sleep(0.05)
    try:
        yield MCPEndpoint(url=url, kit=kit, server=web)
    finally:
        web.should_exit = True
        thread.join(timeout=10)
        kit.close()


class UserSaysNo(Exception):
    """The user closed the authorization page instead of allowing."""


# -- The user's browser ----------------------------------------------------------------------------
@dataclass
class Browser:
    """The person at the keyboard: signs in once, reads each consent page, allows (or refuses to)."""

    server: RunningServer
    session: requests.Session = field(default_factory=requests.Session)
    consent_pages: list[str] = field(default_factory=list)
    willing: bool = True

    def get(self, url: str) -> requests.Response:
        # verify= on each call: a session's own is overridden by REQUESTS_CA_BUNDLE when that is set.
        return self.session.get(url, timeout=10, verify=self.server.cert)

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.session.post(url, data=data, headers={"Referer": url}, timeout=10, verify=self.server.cert,
                                 **kwargs)

    def _sign_in_if_asked(self, page: requests.Response) -> requests.Response:
        if urlsplit(page.url).path != "/accounts/login/":
            return page
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        next_url = parse_qs(urlsplit(page.url).query)["next"][0]
        return self.post(page.url, {"csrfmiddlewaretoken": csrf.group(1), "username": "admin",
                                    "password": ADMIN_PASSWORD, "next": next_url})

    def authorize(self, url: str) -> str:
        """Open the authorization URL, sign in, allow; return the redirect's Location."""
        if not self.willing:
            raise UserSaysNo(url)
        consent = self._sign_in_if_asked(self.get(url))
        assert consent.status_code == 200 and "authorizationForm" in consent.text, consent.text[:800]
        self.consent_pages.append(consent.text)
        form = hidden_fields(consent.text)
        form["allow"] = "Authorize"
        answer = self.post(consent.url, form, allow_redirects=False)
        assert answer.status_code == 302, answer.text[:800]
        return answer.headers["Location"]

    def revoke_app(self, client_id: str) -> requests.Response:
        """The connected-apps page: find the app, revoke it."""
        url = f"{self.server.base_url}/accounts/apps"
        page = self._sign_in_if_asked(self.get(url))
        assert page.status_code == 200 and client_id in unescape(page.text), page.text[:800]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf
        return self.post(url, {"csrfmiddlewaretoken": csrf.group(1), "client": client_id})


# -- The agent: the SDK's OAuth client -------------------------------------------------------------
class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Agent:
    mcp_url: str
    browser: Browser
    client_metadata_url: str | None = None
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    redirect_uri: str = "http://127.0.0.1:33418/callback"
    authorizations: int = 0
    _location: str = ""

    def provider(self) -> OAuthClientProvider:
        async def redirect_handler(url: str) -> None:
            self.authorizations += 1
            self._location = await asyncio.to_thread(self.browser.authorize, url)

        async def callback_handler() -> AuthorizationCodeResult:
            query = parse_qs(urlsplit(self._location).query)
            assert "error" not in query, query
            return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

        metadata = OAuthClientMetadata(client_name="Forecast agent", redirect_uris=[self.redirect_uri],
                                       grant_types=["authorization_code", "refresh_token"],
                                       response_types=["code"], scope=SCOPE, token_endpoint_auth_method="none")
        return OAuthClientProvider(server_url=self.mcp_url, client_metadata=metadata, storage=self.storage,
                                   redirect_handler=redirect_handler, callback_handler=callback_handler,
                                   client_metadata_url=self.client_metadata_url)

    def call(self, provider: OAuthClientProvider, city: str) -> str:
        async def run() -> str:
            context = ssl.create_default_context(cafile=self.browser.server.cert)
            async with httpx2.AsyncClient(auth=provider, verify=context, timeout=20) as http:
                async with streamable_http_client(self.mcp_url, http_client=http) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        await session.initialize()
                        result = await session.call_tool("forecast", {"city": city})
                        assert not result.is_error, result
                        return str(result.content[0].text)  # type: ignore[union-attr]

        return asyncio.run(run())


def _introspect(server: RunningServer, endpoint: MCPEndpoint, token: str) -> dict[str, Any]:
    config = endpoint.kit.config
    metadata = requests.get(str(config.metadata_url), verify=server.cert, timeout=10).json()
    answer = requests.post(metadata["introspection_endpoint"], data={"token": token},
                           auth=(config.client_id, config.client_secret), verify=server.cert, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _refresh_refused(server: RunningServer, client_id: str, refresh_token: str) -> None:
    answer = requests.post(f"{server.base_url}/oauth/token", verify=server.cert, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text


def _journey(server: RunningServer, mcp: MCPEndpoint, agent: Agent) -> str:
    """Discover, register, authorize, call, refresh, be revoked. Returns the client id the agent used."""
    # The 401 names the resource's metadata (RFC 9728 §5.1), and that document names this server.
    challenge = requests.post(mcp.url, json={}, timeout=10)
    assert challenge.status_code == 401
    named = re.search(r'resource_metadata="([^"]+)"', challenge.headers["WWW-Authenticate"])
    assert named, challenge.headers["WWW-Authenticate"]
    document = requests.get(named.group(1), timeout=10).json()
    assert document["resource"] == mcp.url and document["authorization_servers"] == [server.base_url]

    provider = agent.provider()
    assert agent.call(provider, "Oslo") == "Sunny in Oslo"
    assert agent.authorizations == 1
    client_info, tokens = agent.storage.client_info, agent.storage.tokens
    assert client_info is not None and tokens is not None and tokens.refresh_token
    # The token is for this MCP server alone (RFC 8707 resource), with the scope asked for.
    claims = _introspect(server, mcp, tokens.access_token)
    assert claims["active"] is True and claims["client_id"] == client_info.client_id
    assert claims["aud"] in (mcp.url, [mcp.url]) and claims["scope"] == SCOPE

    # Refresh: the SDK refreshes an expired token by itself, with no new authorization.
    first_access, first_refresh = tokens.access_token, tokens.refresh_token
    provider.context.token_expiry_time = time.time() - 1
    assert agent.call(provider, "Bergen") == "Sunny in Bergen"
    refreshed = agent.storage.tokens
    assert refreshed is not None and refreshed.access_token != first_access
    assert refreshed.refresh_token and refreshed.refresh_token != first_refresh
    assert agent.authorizations == 1
    # Rotation retired the old pair. A rotation does not wait for every worker (only explicit
    # revocations do, docs/decisions/0006-synchronous-revocation.md): another worker may answer
    # from its cache until it re-reads the revocation generation, at most CHECK_INTERVAL later.
    retired_by = time.monotonic() + 10 * CHECK_INTERVAL
    while _introspect(server, mcp, first_access)["active"] is not False:
        assert time.monotonic() < retired_by, "a rotated-out access token was still active after 1 s"
        time.sleep(CHECK_INTERVAL / 2)

    # The user revokes the app: every token it holds stops working at once, refresh included.
    revoked = agent.browser.revoke_app(client_info.client_id)
    assert revoked.status_code in (200, 303), revoked.text[:500]
    assert _introspect(server, mcp, refreshed.access_token)["active"] is False
    # The kit cached that token as good; the revocation reaches it over its pushed stream, which is
    # asynchronous: allow it the stream's delivery time, never the cache's TTL (60 s here).
    heard_by = time.monotonic() + 5.0
    while True:
        direct = requests.post(mcp.url, json={}, headers={"Authorization": f"Bearer {refreshed.access_token}"},
                               timeout=10)
        if direct.status_code == 401 or time.monotonic() > heard_by:
            break
        time.sleep(0.05)
    assert direct.status_code == 401, "the kit still served a revoked token 5 s after the revocation"
    _refresh_refused(server, client_info.client_id, str(refreshed.refresh_token))
    # The agent itself is refused too: it can only start over by asking the user, who now says no.
    agent.browser.willing = False
    with pytest.raises(BaseException) as refused:  # noqa: PT011 - the SDK wraps the refusal in exception groups
        agent.call(provider, "Tromsø")
    assert "UserSaysNo" in repr(refused.value) or refused.group_contains(UserSaysNo), refused.value
    assert agent.authorizations == 2  # refused, it asked the user again (who said no)
    return client_info.client_id


def test_mcp_agent_with_dynamic_registration(server: RunningServer, mcp_server: MCPEndpoint) -> None:
    agent = Agent(mcp_url=mcp_server.url, browser=Browser(server))
    client_id = _journey(server, mcp_server, agent)
    assert not client_id.startswith("https://")
    listed = server.manage("client", "show", client_id)
    assert listed["registration_source"] == "dcr", listed
    # The consent page told the user this app registered itself.
    assert "nverified" in agent.browser.consent_pages[0]


def test_mcp_agent_with_client_id_metadata_document(server: RunningServer, mcp_server: MCPEndpoint,
                                                    site: Site) -> None:
    document_url = site.documents.url("/agents/forecast.json")
    agent = Agent(mcp_url=mcp_server.url, browser=Browser(server), client_metadata_url=document_url,
                  redirect_uri="http://127.0.0.1:33419/callback")
    site.documents.routes["/agents/forecast.json"] = json_answer({
        "client_id": document_url, "client_name": "Forecast agent (CIMD)", "redirect_uris": [agent.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none", "scope": SCOPE,
    })
    client_id = _journey(server, mcp_server, agent)
    assert client_id == document_url
    assert site.documents.hits.get("/agents/forecast.json")  # the server fetched the agent's document itself
    # The consent page showed where the app's description came from.
    assert f"127.0.0.1:{site.documents.port}" in agent.browser.consent_pages[0]
