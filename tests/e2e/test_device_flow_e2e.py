"""End to end: RFC 8628 against the real server over HTTPS, with Authlib as the device's client.

Authlib 1.9 implements the device grant's server side only; its ``OAuth2Session`` still makes the
device authorization request (a form POST) and polls with ``fetch_token(grant_type=<device_code>)``,
raising ``OAuthError`` for the §3.5 answers. The person approves in a browser session (requests)
through the real sign-in and ``accounts/device`` pages, starting from ``verification_uri_complete``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.server import ADMIN_PASSWORD, RunningServer, start_server

pytestmark = pytest.mark.e2e

AUDIENCE = "https://chat-api.example.test"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("e2e-device")), "--no-beat",
                           env_overrides={"AUTHSERVER_DEVICE_INTERVAL_SECONDS": "1"})
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
        "cli": server.manage("client", "create", "--name", "Terminal agent", "--type", "public",
                             "--grant", "device_code", "--scope", "ai.infer", "--audience", AUDIENCE),
    }


def _session(server: RunningServer, client_id: str) -> OAuth2Session:
    oauth = OAuth2Session(client_id=client_id, scope="ai.infer", token_endpoint_auth_method="none")
    oauth.verify = server.cert
    return oauth


def _poll(server: RunningServer, oauth: OAuth2Session, device_code: str) -> dict[str, object]:
    return dict(oauth.fetch_token(f"{server.base_url}/oauth/token", grant_type=GRANT, device_code=device_code,
                                  client_id=oauth.client_id, verify=server.cert))


def _poll_error(server: RunningServer, oauth: OAuth2Session, device_code: str) -> str:
    with pytest.raises(OAuthError) as refused:
        _poll(server, oauth, device_code)
    return str(refused.value.error)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _decide(server: RunningServer, complete_uri: str, decision: str) -> str:
    """A person's browser: open the complete URI, sign in, confirm the pre-filled code, decide."""
    browser = requests.Session()
    browser.verify = server.cert
    login = browser.get(complete_uri, timeout=10, verify=server.cert)
    assert urlsplit(login.url).path == "/accounts/login/"
    page = browser.post(login.url, data={"csrfmiddlewaretoken": _csrf(login.text), "username": "admin",
                                         "password": ADMIN_PASSWORD, "next": urlsplit(complete_uri).path + "?"
                                         + urlsplit(complete_uri).query},
                        headers={"Referer": login.url}, timeout=10, verify=server.cert)
    assert urlsplit(page.url).path == "/accounts/device", page.url
    code = re.search(r'id="id_user_code" value="([A-Z-]+)"', page.text)
    assert code, "the code is pre-filled from verification_uri_complete"
    confirm = browser.post(page.url, data={"csrfmiddlewaretoken": _csrf(page.text), "user_code": code.group(1)},
                           headers={"Referer": page.url}, timeout=10, verify=server.cert)
    assert confirm.status_code == 200 and "Terminal agent" in confirm.text and "ai.infer" in confirm.text
    done = browser.post(page.url, data={"csrfmiddlewaretoken": _csrf(confirm.text), "user_code": code.group(1),
                                        "decision": decision}, headers={"Referer": page.url}, timeout=10, verify=server.cert)
    assert done.status_code == 200, done.text[:500]
    return done.text


def test_device_flow_with_authlib(server: RunningServer, registered: dict[str, dict[str, object]]) -> None:
    cli, rs = registered["cli"], registered["rs"]
    metadata = requests.get(f"{server.base_url}/.well-known/oauth-authorization-server", verify=server.cert,
                            timeout=10).json()
    assert GRANT in metadata["grant_types_supported"]
    oauth = _session(server, str(cli["client_id"]))
    started = oauth.post(metadata["device_authorization_endpoint"],
                         data={"client_id": cli["client_id"], "scope": "ai.infer"}, withhold_token=True, verify=server.cert,
                         timeout=10)
    assert started.status_code == 200, started.text
    codes = started.json()
    assert codes["verification_uri"] == f"{server.base_url}/accounts/device" and codes["interval"] == 1

    assert _poll_error(server, oauth, codes["device_code"]) == "authorization_pending"
    assert _poll_error(server, oauth, codes["device_code"]) == "slow_down"  # at once: faster than 1 s
    assert 'id="device-result"' in _decide(server, codes["verification_uri_complete"], "allow")
    time.sleep(1 + 5 + 0.2)  # the interval grew by 5 s with slow_down (§3.5)
    token = _poll(server, oauth, codes["device_code"])
    assert token["token_type"] == "Bearer" and token["scope"] == "ai.infer" and token["refresh_token"]
    answer = requests.post(f"{server.base_url}/oauth/introspect", data={"token": token["access_token"]},
                           auth=(str(rs["client_id"]), str(rs["client_secret"])), verify=server.cert,
                           timeout=10).json()
    assert answer["active"] is True and answer["username"] == "admin" and answer["aud"] == [AUDIENCE]

    rotated = oauth.refresh_token(f"{server.base_url}/oauth/token", refresh_token=token["refresh_token"],
                                  verify=server.cert)
    assert rotated["refresh_token"] != token["refresh_token"]
    time.sleep(1.1)
    assert _poll_error(server, oauth, codes["device_code"]) == "invalid_grant", "a device code works once"


def test_denied_device_gets_access_denied(server: RunningServer, registered: dict[str, dict[str, object]]) -> None:
    cli = registered["cli"]
    oauth = _session(server, str(cli["client_id"]))
    codes = oauth.post(f"{server.base_url}/oauth/device", data={"client_id": cli["client_id"]}, withhold_token=True, verify=server.cert,
                       timeout=10).json()
    _decide(server, codes["verification_uri_complete"], "deny")
    assert _poll_error(server, oauth, codes["device_code"]) == "access_denied"
