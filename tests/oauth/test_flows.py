"""The happy paths of every grant, through the real views and DOT."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from authserver import credentials
from tests.factories import REDIRECT_URI, RS_AUDIENCE
from tests.helpers import authorize, client_credentials, code_from, exchange_code, introspect, pkce_pair, refresh

pytestmark = pytest.mark.django_db


def test_client_credentials_token_is_introspectable_by_its_audience(client: HttpClient, service_client, resource_server):
    app, secret = service_client
    rs, rs_secret = resource_server
    response = client_credentials(client, app, secret, scope="ai.infer")
    assert response.status_code == 200, response.content
    body = response.json()
    assert credentials.is_well_formed(body["access_token"], "at")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert "refresh_token" not in body
    assert response["Cache-Control"] == "no-store"

    answer = introspect(client, rs, rs_secret, body["access_token"]).json()
    assert answer["active"] is True
    assert answer["scope"] == "ai.infer"
    assert answer["client_id"] == app.client_id
    assert answer["aud"] == [RS_AUDIENCE]
    assert answer["iss"] == "https://127.0.0.1:8443"
    assert answer["token_type"] == "Bearer"
    assert answer["exp"] - answer["iat"] == 600
    assert "sub" not in answer and "username" not in answer


def test_client_credentials_without_scope_gets_all_allowed_scopes(client, service_client):
    app, secret = service_client
    body = client_credentials(client, app, secret).json()
    assert set(body["scope"].split()) == {"ai.infer", "ai.admin"}


def test_authorization_code_with_pkce_then_refresh_rotation(client, web_client, user, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    client.force_login(user)
    verifier, challenge = pkce_pair()
    response = authorize(client, app, challenge=challenge)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert "iss=https%3A%2F%2F127.0.0.1%3A8443" in location  # RFC 9207
    assert "state=xyz" in location
    code = code_from(response)
    assert credentials.is_well_formed(code, "ac")

    tokens = exchange_code(client, app, secret, code, verifier)
    assert tokens.status_code == 200, tokens.content
    body = tokens.json()
    assert credentials.is_well_formed(body["refresh_token"], "rt")
    answer = introspect(client, rs, rs_secret, body["access_token"]).json()
    assert answer["active"] is True
    assert answer["username"] == "alice"
    assert answer["sub"] == str(user.pk)

    rotated = refresh(client, app, secret, body["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["refresh_token"] != body["refresh_token"]
    assert introspect(client, rs, rs_secret, body["access_token"]).json() == {"active": False}
    assert introspect(client, rs, rs_secret, new["access_token"]).json()["active"] is True
