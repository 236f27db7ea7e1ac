"""Resource servers without a grant, and audiences that must name a registered resource server
(clients.services.client_register, the ``client create`` CLI)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command

from authserver.audit.models import AuditEvent
from authserver.oauth.models import AccessToken, RefreshToken
from clients.models import GRANT_NONE, Client
from clients.services import ClientError, client_register
from keys.exchange import API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, ScopeFactory, make_client

pytestmark = pytest.mark.django_db

TYPO = "https://api.exmaple.test"


@pytest.fixture
def grantless_rs() -> tuple[Client, str]:
    client, secret = client_register(name="Inference API", client_type="confidential", grant_types=[],
                                     resource_server_audience=RS_AUDIENCE)
    assert secret is not None
    return client, secret


TOKEN_REQUESTS = [
    pytest.param({"grant_type": "client_credentials"}, id="client_credentials-empty-scope"),
    pytest.param({"grant_type": "client_credentials", "scope": "ai.infer"}, id="client_credentials"),
    pytest.param({"grant_type": "authorization_code", "code": "x" * 40, "code_verifier": "v" * 43,
                  "redirect_uri": "https://app.example.test/callback"}, id="authorization_code"),
    pytest.param({"grant_type": "refresh_token", "refresh_token": "rt_" + "x" * 40}, id="refresh_token"),
    pytest.param({"grant_type": "password", "username": "alice", "password": "pw"}, id="password"),
    pytest.param({"grant_type": TOKEN_EXCHANGE, "subject_token_type": API_KEY_TOKEN_TYPE}, id="token-exchange"),
]


@pytest.mark.parametrize("data", TOKEN_REQUESTS)
def test_a_resource_server_without_a_grant_can_never_mint_a_token(client: Any, grantless_rs: Any, data: dict) -> None:
    ScopeFactory(name="ai.infer")
    rs, secret = grantless_rs
    assert rs.grant_types == [] and rs.authorization_grant_type == GRANT_NONE
    if data["grant_type"] == TOKEN_EXCHANGE:  # a key the resource server somehow owns
        data = {**data, "subject_token": api_key_create(client=rs, name="rs key", actor="test")[1]}
    response = client.post("/oauth/token", data, HTTP_AUTHORIZATION=basic_auth(rs.client_id, secret))
    assert response.status_code == 400, response.content
    # RFC 6749 §5.2; the password grant is not offered to anyone.
    expected = "unsupported_grant_type" if data["grant_type"] == "password" else "unauthorized_client"
    assert response.json()["error"] == expected
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()


def test_the_grantless_resource_server_still_introspects(client: Any, grantless_rs: Any) -> None:
    service, service_secret = make_client(name="svc", scopes=["ai.infer"], audiences=[RS_AUDIENCE],
                                          allow_unregistered_audience=False)
    token = client.post("/oauth/token", {"grant_type": "client_credentials", "scope": "ai.infer"},
                        HTTP_AUTHORIZATION=basic_auth(service.client_id, service_secret)).json()["access_token"]
    rs, secret = grantless_rs
    answer = client.post("/oauth/introspect", {"token": token}, HTTP_AUTHORIZATION=basic_auth(rs.client_id, secret))
    assert answer.status_code == 200 and answer.json()["active"] is True


def test_an_ordinary_client_still_needs_a_grant() -> None:
    with pytest.raises(ClientError, match="only a resource server may have none"):
        client_register(name="svc", client_type="confidential", grant_types=[])
    assert not Client.objects.exists()


def test_an_audience_naming_no_registered_resource_server_is_refused(grantless_rs: Any) -> None:
    with pytest.raises(ClientError, match=f"no registered resource server: {TYPO}"):
        client_register(name="svc", client_type="confidential", grant_types=["client_credentials"],
                        audiences=[RS_AUDIENCE, TYPO])
    assert not Client.objects.filter(name="svc").exists()
    client, _ = client_register(name="svc", client_type="confidential", grant_types=["client_credentials"],
                                audiences=[RS_AUDIENCE, TYPO], allow_unregistered_audience=True, actor="cli")
    assert client.allowed_audiences == [RS_AUDIENCE, TYPO]
    event = AuditEvent.objects.get(event="client.created", subject=f"client:{client.client_id}")
    assert event.details["unregistered_audiences"] == [TYPO]


def _cli(capsys: Any, *args: str) -> tuple[int, dict]:
    try:
        call_command("client", "create", *args)
    except SystemExit as exc:
        return int(exc.code or 0), json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    return 0, json.loads(capsys.readouterr().out)


def test_the_cli_registers_a_resource_server_without_a_grant_and_checks_audiences(capsys: Any) -> None:
    code, rs = _cli(capsys, "--name", "api", "--type", "confidential", "--resource-server", RS_AUDIENCE)
    assert code == 0 and rs["grant_types"] == [] and rs["resource_server"] == RS_AUDIENCE
    code, err = _cli(capsys, "--name", "svc", "--type", "confidential", "--grant", "client_credentials",
                     "--audience", TYPO)
    assert code == 1 and "no registered resource server" in err["error"], err
    code, err = _cli(capsys, "--name", "svc", "--type", "confidential", "--audience", RS_AUDIENCE)
    assert code == 1 and "at least one grant type" in err["error"], err
    code, svc = _cli(capsys, "--name", "svc", "--type", "confidential", "--grant", "client_credentials",
                     "--audience", RS_AUDIENCE, "--audience", TYPO, "--allow-unregistered-audience")
    assert code == 0 and svc["audiences"] == [RS_AUDIENCE, TYPO]


def test_the_management_api_counts_as_registered(settings: Any) -> None:
    client, _ = client_register(name="ops", client_type="confidential", grant_types=["client_credentials"],
                                audiences=[settings.MANAGEMENT_API_AUDIENCE])
    assert client.allowed_audiences == [settings.MANAGEMENT_API_AUDIENCE]
