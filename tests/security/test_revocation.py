"""Token revocation (RFC 7009): own tokens only (§2.1), 200 for anything unknown (§2.2), and
revoking an access token takes its refresh token with it (§2.1, "MAY", we do)."""

from __future__ import annotations

import pytest

from authserver import credentials
from authserver.oauth.models import AccessToken, RefreshToken
from tests.helpers import REVOKE_URL, basic_auth, introspect, obtain_tokens, refresh

pytestmark = pytest.mark.django_db

INACTIVE = {"active": False}


def revoke(client, app, secret, token, hint=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    headers = {}
    if secret:
        headers["HTTP_AUTHORIZATION"] = basic_auth(app.client_id, secret)
    else:
        data["client_id"] = app.client_id
    return client.post(REVOKE_URL, data, **headers)


@pytest.fixture
def tokens_of_a(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    tokens = obtain_tokens(client, app, secret)
    client.logout()
    return tokens


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        pytest.param("access_token", None, id="access-no-hint"),
        pytest.param("access_token", "access_token", id="access-hint"),
        pytest.param("access_token", "refresh_token", id="access-wrong-hint"),
        pytest.param("refresh_token", None, id="refresh-no-hint"),
        pytest.param("refresh_token", "refresh_token", id="refresh-hint"),
        pytest.param("refresh_token", "access_token", id="refresh-wrong-hint"),
    ],
)
def test_client_b_cannot_revoke_tokens_of_client_a(client, tokens_of_a, web_client, other_web_client, resource_server,
                                                   kind, hint):
    app_a, secret_a = web_client
    app_b, secret_b = other_web_client
    rs, rs_secret = resource_server
    response = revoke(client, app_b, secret_b, tokens_of_a[kind], hint)
    assert response.status_code == 200  # §2.2: no disclosure of whether the token exists
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True
    assert RefreshToken.objects.get(application=app_a).revoked is None
    assert refresh(client, app_a, secret_a, tokens_of_a["refresh_token"]).status_code == 200


def test_unauthenticated_revocation_is_refused(client, tokens_of_a, web_client, resource_server):
    app, _ = web_client
    rs, rs_secret = resource_server
    response = client.post(REVOKE_URL, {"token": tokens_of_a["access_token"], "client_id": app.client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True


def test_wrong_secret_revocation_is_refused(client, tokens_of_a, web_client, resource_server):
    app, _ = web_client
    rs, rs_secret = resource_server
    response = revoke(client, app, credentials.mint("cs"), tokens_of_a["access_token"])
    assert response.status_code == 401
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True


UNKNOWN = [
    pytest.param(lambda t: credentials.mint("at"), id="unknown-access-token"),
    pytest.param(lambda t: credentials.mint("rt"), id="unknown-refresh-token"),
    pytest.param(lambda t: credentials.digest(t["access_token"]), id="stored-digest"),
    pytest.param(lambda t: t["access_token"][:-1] + ("A" if t["access_token"][-1] != "A" else "B"), id="bad-checksum"),
    pytest.param(lambda t: "garbage", id="garbage"),
    pytest.param(lambda t: "cs_" + t["access_token"][3:], id="wrong-type"),
    pytest.param(lambda t: "at_" + "A" * 60000, id="large"),
]


@pytest.mark.parametrize("make_token", UNKNOWN)
def test_unknown_token_answers_200_and_revokes_nothing(client, tokens_of_a, web_client, resource_server, make_token):
    app, secret = web_client
    rs, rs_secret = resource_server
    response = revoke(client, app, secret, make_token(tokens_of_a))
    assert response.status_code == 200
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus_hint"])
def test_revoking_the_access_token_kills_its_refresh_token(client, tokens_of_a, web_client, resource_server, hint):
    app, secret = web_client
    rs, rs_secret = resource_server
    assert revoke(client, app, secret, tokens_of_a["access_token"], hint).status_code == 200
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json() == INACTIVE
    assert not AccessToken.objects.exists()
    response = refresh(client, app, secret, tokens_of_a["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_revoking_the_refresh_token_kills_its_access_token(client, tokens_of_a, web_client, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    assert revoke(client, app, secret, tokens_of_a["refresh_token"]).status_code == 200
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json() == INACTIVE
    assert refresh(client, app, secret, tokens_of_a["refresh_token"]).json()["error"] == "invalid_grant"


def test_revocation_is_idempotent(client, tokens_of_a, web_client):
    app, secret = web_client
    assert revoke(client, app, secret, tokens_of_a["access_token"]).status_code == 200
    assert revoke(client, app, secret, tokens_of_a["access_token"]).status_code == 200
    assert revoke(client, app, secret, tokens_of_a["refresh_token"]).status_code == 200


def test_public_client_revokes_its_own_token_with_client_id(client, native_client, user, resource_server):
    app, _ = native_client
    rs, rs_secret = resource_server
    client.force_login(user)
    tokens = obtain_tokens(client, app, None, redirect_uri="http://127.0.0.1/callback")
    assert revoke(client, app, None, tokens["access_token"]).status_code == 200
    assert introspect(client, rs, rs_secret, tokens["access_token"]).json() == INACTIVE


def test_public_client_cannot_revoke_confidential_clients_token(client, tokens_of_a, native_client, resource_server):
    native, _ = native_client
    rs, rs_secret = resource_server
    assert revoke(client, native, None, tokens_of_a["access_token"]).status_code == 200
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True


def test_revocation_refuses_query_parameters(client, tokens_of_a, web_client, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    response = client.post(
        f"{REVOKE_URL}?token={tokens_of_a['access_token']}", {}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    )
    assert response.status_code == 400
    assert introspect(client, rs, rs_secret, tokens_of_a["access_token"]).json()["active"] is True
