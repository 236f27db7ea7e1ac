"""Credentials in URLs end up in logs, proxies and Referer headers: every endpoint refuses them
(RFC 6749 §2.3.1 and §3.2, RFC 6750 §2.3, RFC 9700 §4.3.2)."""

from __future__ import annotations

import pytest

from authserver.oauth.models import AccessToken
from tests.factories import REDIRECT_URI
from tests.helpers import (
    AUTHORIZE_URL,
    INTROSPECT_URL,
    REVOKE_URL,
    TOKEN_URL,
    authorize_params,
    basic_auth,
    introspect,
    obtain_code,
    pkce_pair,
)

pytestmark = pytest.mark.django_db


# Token requests with something in the query string. Placeholders are filled in per test.
TOKEN_QUERY = [
    pytest.param("client_secret={secret}", {"grant_type": "client_credentials", "client_id": "{client_id}"}, False,
                 id="client-secret-in-query"),
    pytest.param("client_id={client_id}&client_secret={secret}", {"grant_type": "client_credentials"}, False,
                 id="all-client-credentials-in-query"),
    pytest.param("grant_type=client_credentials", {}, True, id="grant-type-in-query"),
    pytest.param("scope=ai.admin", {"grant_type": "client_credentials"}, True, id="scope-in-query"),
    pytest.param("x=1", {"grant_type": "client_credentials"}, True, id="any-query"),
]


@pytest.mark.parametrize(("query", "body", "basic"), TOKEN_QUERY)
def test_token_endpoint_refuses_query_parameters(client, service_client, query, body, basic):
    app, secret = service_client
    fill = {"client_id": app.client_id, "secret": secret}
    headers = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, secret)} if basic else {}
    response = client.post(
        f"{TOKEN_URL}?{query.format(**fill)}", {k: v.format(**fill) for k, v in body.items()}, **headers
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"  # RFC 6749 §5.2, not text/html
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_request"
    assert not AccessToken.objects.exists()


def test_token_endpoint_refuses_code_in_query(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    response = client.post(
        f"{TOKEN_URL}?code={code}&code_verifier={verifier}",
        {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not AccessToken.objects.exists()


def test_token_endpoint_refuses_get(client, service_client):
    app, secret = service_client
    response = client.get(
        TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    )
    assert response.status_code == 405
    assert not AccessToken.objects.exists()


@pytest.fixture
def access_token(client, service_client) -> str:
    app, secret = service_client
    return client.post(
        TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    ).json()["access_token"]


def test_bearer_in_query_does_not_authenticate_introspection(client, access_token):
    response = client.post(f"{INTROSPECT_URL}?access_token={access_token}", {"token": access_token})
    assert response.status_code in {400, 401}
    assert b"active" not in response.content


def test_bearer_in_body_does_not_authenticate_introspection(client, access_token):
    response = client.post(INTROSPECT_URL, {"token": access_token, "access_token": access_token})
    assert response.status_code == 401


def test_bearer_in_query_does_not_authenticate_revocation(client, access_token, resource_server):
    rs, rs_secret = resource_server
    response = client.post(f"{REVOKE_URL}?access_token={access_token}", {"token": access_token})
    assert response.status_code in {400, 401}
    assert introspect(client, rs, rs_secret, access_token).json()["active"] is True


def test_bearer_header_does_not_authenticate_revocation(client, access_token, resource_server):
    rs, rs_secret = resource_server
    response = client.post(REVOKE_URL, {"token": access_token}, HTTP_AUTHORIZATION=f"Bearer {access_token}")
    assert response.status_code in {400, 401}
    assert introspect(client, rs, rs_secret, access_token).json()["active"] is True


@pytest.mark.parametrize(
    "how",
    [pytest.param("query", id="query"), pytest.param("header", id="header")],
)
def test_bearer_does_not_log_a_user_in_at_the_authorization_endpoint(client, web_client, access_token, how):
    app, _ = web_client
    params = authorize_params(app, challenge=pkce_pair()[1])
    headers = {}
    if how == "query":
        params["access_token"] = access_token
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {access_token}"
    response = client.get(AUTHORIZE_URL, params, **headers)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login")  # asked to log in, no consent page
    assert "code=" not in response["Location"]


def test_metadata_ignores_bearer_in_query(client, access_token):
    """Public documents are public: a token in the query changes nothing and is not reflected."""
    response = client.get(f"/.well-known/oauth-authorization-server?access_token={access_token}")
    assert response.status_code == 200
    assert access_token.encode() not in response.content
