"""Scope and audience escalation: a client gets at most what it is registered for
(RFC 6749 §3.3, RFC 8707 §2)."""

from __future__ import annotations

import pytest

from authserver.oauth.models import AccessToken, Grant
from tests.conftest import OTHER_RS_AUDIENCE
from tests.factories import RS_AUDIENCE, ScopeFactory, make_client
from tests.helpers import (
    AUTHORIZE_URL,
    authorize,
    authorize_params,
    basic_auth,
    client_credentials,
    exchange_code,
    introspect,
    location_query,
    obtain_code,
    pkce_pair,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited_client(db):
    """Allowed scope ai.infer only, audience api.example.test only; ai.admin and another API exist."""
    ScopeFactory(name="ai.admin")
    return make_client(name="limited", scopes=["ai.infer"], audiences=[RS_AUDIENCE])


CC_SCOPES = [
    pytest.param("ai.admin", id="other-clients-scope"),
    pytest.param("ai.infer ai.admin", id="allowed-plus-extra"),
    pytest.param("no.such.scope", id="unknown-scope"),
    pytest.param("ai.infer*", id="wildcard-suffix"),
    pytest.param("AI.INFER", id="case-changed"),
    pytest.param("ai.infer\u00a0ai.admin", id="nbsp-separator"),
]


@pytest.mark.parametrize("scope", CC_SCOPES)
def test_client_credentials_scope_outside_allowed(client, limited_client, scope):
    app, secret = limited_client
    response = client_credentials(client, app, secret, scope=scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


def test_client_credentials_allowed_scope_control(client, limited_client):
    app, secret = limited_client
    response = client_credentials(client, app, secret, scope="ai.infer")
    assert response.status_code == 200
    assert response.json()["scope"] == "ai.infer"


CC_RESOURCES = [
    pytest.param(OTHER_RS_AUDIENCE, id="other-api"),
    pytest.param(RS_AUDIENCE + "/", id="trailing-slash"),
    pytest.param(RS_AUDIENCE + ".evil.test", id="suffix-domain"),
    pytest.param("https://API.example.test", id="host-case"),
    pytest.param("http://api.example.test", id="http-variant"),
    pytest.param("https://evil.test", id="unrelated"),
]


@pytest.mark.parametrize("resource", CC_RESOURCES)
def test_client_credentials_resource_outside_allowed_audiences(client, limited_client, resource):
    app, secret = limited_client
    response = client_credentials(client, app, secret, resource=resource)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()


def test_client_credentials_one_bad_resource_among_good_ones(client, limited_client):
    app, secret = limited_client
    response = client.post(
        "/oauth/token", {"grant_type": "client_credentials", "resource": [RS_AUDIENCE, OTHER_RS_AUDIENCE]},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_client_credentials_token_is_useless_at_other_api(client, limited_client, resource_server, other_resource_server):
    app, secret = limited_client
    rs, rs_secret = resource_server
    other, other_secret = other_resource_server
    token = client_credentials(client, app, secret, resource=RS_AUDIENCE).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    assert introspect(client, other, other_secret, token).json() == {"active": False}


AUTHZ_SCOPES = [
    pytest.param("ai.admin", id="other-scope"),
    pytest.param("ai.infer ai.admin", id="allowed-plus-extra"),
    pytest.param("no.such.scope", id="unknown-scope"),
]


@pytest.mark.parametrize("scope", AUTHZ_SCOPES)
def test_authorization_code_disallowed_scope(client, web_client, user, scope):
    ScopeFactory(name="ai.admin")
    app, _ = web_client
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorize_params(app, challenge=pkce_pair()[1], scope=scope))
    assert response.status_code == 302
    query = location_query(response)
    assert query["error"] == ["invalid_scope"]
    assert "code" not in query
    assert not Grant.objects.exists()


def test_consent_form_scope_tampering(client, web_client, user):
    """The consent form carries the scope in a hidden field; widening it before approving fails."""
    ScopeFactory(name="ai.admin")
    app, _ = web_client
    client.force_login(user)
    page = client.get(AUTHORIZE_URL, authorize_params(app, challenge=pkce_pair()[1]))
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(AUTHORIZE_URL, {**form, "scope": "ai.infer ai.admin", "allow": "Authorize"})
    assert "code" not in location_query(response)
    assert not Grant.objects.filter(scope__contains="ai.admin").exists()


def test_authorization_code_resource_outside_allowed_audiences(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    verifier, challenge = pkce_pair()
    response = authorize(client, app, challenge=challenge, resource=OTHER_RS_AUDIENCE)
    if response.status_code == 302 and "code" in location_query(response):
        # Refused no later than the token endpoint.
        tokens = exchange_code(client, app, secret, location_query(response)["code"][0], verifier)
        assert tokens.status_code == 400
        assert tokens.json()["error"] == "invalid_target"
    else:
        assert "code" not in location_query(response)
    assert not AccessToken.objects.exists()


def test_code_exchange_cannot_add_a_resource(client, web_client, user, other_resource_server):
    """The resource indicator at the token endpoint cannot exceed the client's audiences either."""
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    response = client.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
         "redirect_uri": "https://app.example.test/callback", "resource": OTHER_RS_AUDIENCE},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()
