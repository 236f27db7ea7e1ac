"""End to end: the real server process over HTTPS, driven by an independent OAuth client (Authlib).

Authorization code + PKCE through the real login and consent forms, refresh rotation and reuse
detection, client credentials, introspection by a resource server, and revocation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.server import ADMIN_PASSWORD, RunningServer, start_server

pytestmark = pytest.mark.e2e

AUDIENCE = "https://chat-api.example.test"
REDIRECT_URI = "https://app.example.test/callback"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("e2e-data")), "--no-beat")
    try:
        yield running
    finally:
        assert running.stop() == 0, "".join(running.output)[-3000:]


@pytest.fixture(scope="module")
def registered(server: RunningServer) -> dict[str, dict[str, object]]:
    server.manage("scope", "create", "ai.infer", "--description", "Run inference")
    return {
        "rs": server.manage("client", "create", "--name", "Chat API", "--type", "confidential",
                            "--grant", "client_credentials", "--resource-server", AUDIENCE),
        "svc": server.manage("client", "create", "--name", "Batch", "--type", "confidential",
                             "--grant", "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE),
        "web": server.manage("client", "create", "--name", "Web app", "--type", "confidential",
                             "--grant", "authorization_code", "--redirect-uri", REDIRECT_URI,
                             "--scope", "ai.infer", "--audience", AUDIENCE),
    }


def _introspect(server: RunningServer, rs: dict[str, object], token: str) -> dict[str, object]:
    response = requests.post(
        f"{server.base_url}/oauth/introspect", data={"token": token},
        auth=(str(rs["client_id"]), str(rs["client_secret"])), verify=server.cert, timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _form(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    fields.update(re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', html))
    return {k: unescape(v) for k, v in fields.items()}


def _login_and_consent(server: RunningServer, authorize_url: str) -> str:
    """A user's browser: follow to the login form, sign in, allow; return the redirect Location."""
    browser = requests.Session()
    browser.verify = server.cert
    login_page = browser.get(authorize_url, timeout=10, verify=server.cert)
    assert urlsplit(login_page.url).path == "/accounts/login/"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    next_url = parse_qs(urlsplit(login_page.url).query)["next"][0]
    consent = browser.post(
        login_page.url,
        data={"csrfmiddlewaretoken": csrf, "username": "admin", "password": ADMIN_PASSWORD, "next": next_url},
        headers={"Referer": login_page.url}, timeout=10, verify=server.cert,
    )
    assert consent.status_code == 200 and "Authorize" in consent.text, consent.text[:500]
    form = _form(consent.text)
    form["allow"] = "Authorize"
    redirect = browser.post(consent.url, data=form, headers={"Referer": consent.url}, allow_redirects=False,
                            timeout=10, verify=server.cert)
    assert redirect.status_code == 302, redirect.text[:500]
    return redirect.headers["Location"]


def test_metadata_over_https(server: RunningServer) -> None:
    metadata = requests.get(f"{server.base_url}/.well-known/oauth-authorization-server", verify=server.cert,
                            timeout=10).json()
    assert metadata["issuer"] == server.base_url
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["token_endpoint"] == f"{server.base_url}/oauth/token"


def test_authorization_code_pkce_refresh_reuse_and_revocation(server, registered) -> None:
    web, rs = registered["web"], registered["rs"]
    oauth = OAuth2Session(
        client_id=web["client_id"], client_secret=web["client_secret"], scope="ai.infer",
        redirect_uri=REDIRECT_URI, code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )
    oauth.verify = server.cert
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(f"{server.base_url}/oauth/authorize", code_verifier=verifier)
    location = _login_and_consent(server, url)
    params = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT_URI) and params["state"] == [state]
    assert params["iss"] == [server.base_url]  # RFC 9207

    token = oauth.fetch_token(f"{server.base_url}/oauth/token", authorization_response=location,
                              code_verifier=verifier, verify=server.cert)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 600
    answer = _introspect(server, rs, token["access_token"])
    assert answer["active"] is True and answer["username"] == "admin" and answer["aud"] == [AUDIENCE]

    rotated = oauth.refresh_token(f"{server.base_url}/oauth/token", refresh_token=token["refresh_token"],
                                verify=server.cert)
    assert rotated["refresh_token"] != token["refresh_token"]
    assert _introspect(server, rs, rotated["access_token"])["active"] is True

    # Replaying the rotated-out refresh token fails and revokes the whole family.
    replay = requests.post(f"{server.base_url}/oauth/token",
                           data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                           auth=(web["client_id"], web["client_secret"]), verify=server.cert, timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert _introspect(server, rs, rotated["access_token"]) == {"active": False}
    dead = requests.post(f"{server.base_url}/oauth/token",
                         data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
                         auth=(web["client_id"], web["client_secret"]), verify=server.cert, timeout=10)
    assert dead.status_code == 400


def test_client_credentials_introspection_and_revocation(server, registered) -> None:
    svc, rs = registered["svc"], registered["rs"]
    oauth = OAuth2Session(client_id=svc["client_id"], client_secret=svc["client_secret"])
    oauth.verify = server.cert
    token = oauth.fetch_token(f"{server.base_url}/oauth/token", grant_type="client_credentials",
                             verify=server.cert)
    assert token["scope"] == "ai.infer"
    assert _introspect(server, rs, token["access_token"])["client_id"] == svc["client_id"]

    revoked = oauth.revoke_token(f"{server.base_url}/oauth/revoke", token=token["access_token"],
                                 token_type_hint="access_token", verify=server.cert)
    assert revoked.status_code == 200
    assert _introspect(server, rs, token["access_token"]) == {"active": False}
