"""A NUL in a client_id is an unknown client, not a database outage (found by tests/fuzz): at the
machine endpoints, the authorization request and the management API's revoke-all.

PostgreSQL text cannot hold a NUL, so asking for one raised a database error, which the
fail-closed boundary answered as ``503 temporarily_unavailable`` and logged and counted as the
database being down: anyone could raise that alarm and get an untrue answer. Runs in both passes
(SQLite stores a NUL and never failed; the PostgreSQL pass is where it answered 503).
"""

from __future__ import annotations

from typing import Any

import pytest

from authserver import events
from tests.conftest import basic_auth
from tests.helpers import API, AUTHORIZE_URL, INTROSPECT_URL, REVOKE_URL, TOKEN_URL

pytestmark = pytest.mark.django_db

NUL_ID = "client\x00id"


@pytest.fixture
def failures(monkeypatch: Any) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(events.dependency_failed, "emit", seen.append)
    return seen


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
@pytest.mark.parametrize("where", ["basic", "body"])
def test_machine_endpoints_refuse_the_client(client: Any, service_client: Any, failures: list[str],
                                             url: str, where: str) -> None:
    _, secret = service_client  # a well-formed secret: the lookup is reached
    data = {"grant_type": "client_credentials", "token": "at_x"}
    headers = {}
    if where == "basic":
        headers["HTTP_AUTHORIZATION"] = basic_auth(NUL_ID, secret)
    else:
        data.update(client_id=NUL_ID, client_secret=secret)
    response = client.post(url, data, **headers)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert failures == []


def test_authorization_request_shows_the_error_page(client: Any, user: Any, failures: list[str]) -> None:
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, {"client_id": NUL_ID, "response_type": "code",
                                          "redirect_uri": "https://app.example.test/callback"})
    assert response.status_code == 400
    assert failures == []


def test_management_api_revoke_all_answers_404(client: Any, failures: list[str]) -> None:
    from keys.api import KEYS_READ, KEYS_WRITE
    from tests.keys.conftest import api_token

    _, token = api_token(client, [KEYS_READ, KEYS_WRITE])
    response = client.post(API + "clients/client%00id/revoke-all", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404, response.content
    assert response.json()["error"] == "not_found"
    assert failures == []
