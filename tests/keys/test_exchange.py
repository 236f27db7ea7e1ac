"""RFC 8693 token exchange: an API key traded for a short-lived, narrower access token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from authserver import credentials
from authserver.oauth.models import AccessToken
from keys.exchange import API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE
from keys.models import ApiKey
from keys.services import api_key_create, api_key_revoke, api_key_suspend
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE
from tests.helpers import TOKEN_URL, introspect

pytestmark = pytest.mark.django_db


def exchange(client, key, remote="127.0.0.1", **extra):
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": key, "subject_token_type": API_KEY_TOKEN_TYPE, **extra}
    return client.post(TOKEN_URL, data, REMOTE_ADDR=remote)


def test_exchange_issues_short_lived_token_with_key_policy(client, key_owner, resource_server):
    rs, rs_secret = resource_server
    key, plaintext = api_key_create(client=key_owner, name="k", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    response = exchange(client, plaintext)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and "refresh_token" not in body
    assert credentials.is_well_formed(body["access_token"], "at")
    answer = introspect(client, rs, rs_secret, body["access_token"]).json()
    assert answer["active"] is True and answer["scope"] == "ai.infer" and answer["aud"] == [RS_AUDIENCE]
    assert answer["client_id"] == key_owner.client_id and "sub" not in answer
    assert AccessToken.objects.get().source_api_key == key.id


def test_exchange_can_only_narrow(client, key_owner):
    _, plaintext = api_key_create(client=key_owner, name="k", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    assert exchange(client, plaintext, scope="ai.embed").json()["error"] == "invalid_scope"
    assert exchange(client, plaintext, resource="https://other-api.example.test").json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()


def test_token_never_outlives_the_key(client, key_owner):
    key, plaintext = api_key_create(client=key_owner, name="k")
    ApiKey.objects.filter(pk=key.pk).update(expires=timezone.now() + timedelta(seconds=120))
    assert exchange(client, plaintext).json()["expires_in"] <= 120


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda owner: credentials.mint("ak"), "invalid_grant"),
        (lambda owner: "garbage", "invalid_grant"),
        (lambda owner: credentials.mint("at"), "invalid_grant"),
        (lambda owner: api_key_revoke(key=api_key_create(client=owner, name="r")[0]) and "revoked", None),
    ],
    ids=["unknown", "garbage", "access-token", "revoked"],
)
def test_exchange_refusals(client, key_owner, make, error):
    value = make(key_owner)
    if value == "revoked":
        key, value = api_key_create(client=key_owner, name="x")
        api_key_revoke(key=key)
    response = exchange(client, value)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_exchange_honours_ip_allowlist(client, key_owner):
    _, plaintext = api_key_create(client=key_owner, name="ip", allowed_ips=["10.0.0.0/8"])
    assert exchange(client, plaintext, remote="192.0.2.1").status_code == 400
    assert exchange(client, plaintext, remote="10.2.3.4").status_code == 200


def test_exchange_with_other_clients_credentials_is_refused(client, key_owner, service_client):
    other, other_secret = service_client
    _, plaintext = api_key_create(client=key_owner, name="k")
    response = client.post(TOKEN_URL, {"grant_type": TOKEN_EXCHANGE, "subject_token": plaintext,
                                       "subject_token_type": API_KEY_TOKEN_TYPE},
                           HTTP_AUTHORIZATION=basic_auth(other.client_id, other_secret))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_wrong_subject_token_type_is_refused(client, key_owner):
    _, plaintext = api_key_create(client=key_owner, name="k")
    response = exchange(client, plaintext, subject_token_type="urn:ietf:params:oauth:token-type:access_token")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_quota_and_rate_limit_apply_to_exchange(client, key_owner):
    _, plaintext = api_key_create(client=key_owner, name="q", rate_limit=(2, 3600))
    assert [exchange(client, plaintext).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("change", [api_key_revoke, api_key_suspend], ids=["revoke", "suspend"])
def test_revoking_the_key_kills_its_exchanged_tokens(client, key_owner, resource_server, change):
    rs, rs_secret = resource_server
    key, plaintext = api_key_create(client=key_owner, name="k")
    token = exchange(client, plaintext).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    change(key=key)
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}
