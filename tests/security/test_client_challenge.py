"""401 answers challenge with the scheme the client used (issue 12, item 10).

RFC 6749 §5.2: a client that authenticated with the Authorization header gets 401 with a
WWW-Authenticate challenge "matching the authentication scheme used by the client": Basic, not
oauthlib's RFC 6750 Bearer challenge. Introspection (RFC 7662 §2.1) answers the same way.
"""

from __future__ import annotations

import pytest

from tests.conftest import basic_auth
from tests.helpers import INTROSPECT_URL, REVOKE_URL, TOKEN_URL

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    pytest.param(TOKEN_URL, {"grant_type": "client_credentials"}, id="token"),
    pytest.param(REVOKE_URL, {"token": "at_" + "a" * 49}, id="revoke"),
    pytest.param(INTROSPECT_URL, {"token": "at_" + "a" * 49}, id="introspect"),
]


def _assert_basic_challenge(response):
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Basic realm="'), challenge
    assert "Bearer" not in challenge
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("url", "data"), ENDPOINTS)
def test_wrong_basic_secret_gets_a_basic_challenge(client, service_client, resource_server, url, data):
    app, _ = resource_server if url == INTROSPECT_URL else service_client
    response = client.post(url, data, HTTP_AUTHORIZATION=basic_auth(app.client_id, "cs_" + "x" * 49))
    _assert_basic_challenge(response)


@pytest.mark.parametrize(("url", "data"), ENDPOINTS)
def test_unknown_basic_client_gets_a_basic_challenge(client, db, url, data):
    response = client.post(url, data, HTTP_AUTHORIZATION=basic_auth("no-such-client", "cs_" + "x" * 49))
    _assert_basic_challenge(response)


@pytest.mark.parametrize(("url", "data"), ENDPOINTS[:2])
def test_wrong_secret_in_the_body_gets_the_basic_challenge_too(client, service_client, url, data):
    """No HTTP scheme was used; Basic is the one the endpoint takes (RFC 9110 §11.6.1: a 401
    always carries a challenge)."""
    app, _ = service_client
    response = client.post(url, {**data, "client_id": app.client_id, "client_secret": "cs_" + "x" * 49})
    _assert_basic_challenge(response)
