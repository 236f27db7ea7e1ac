"""The management API's authentication and authorization: bearer tokens only (RFC 6750), for this
API's audience (RFC 8707), one answer for every invalid token, and a scope per operation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authserver import credentials
from authserver.api_auth import management_api_audience
from authserver.oauth.models import AccessToken
from clients.models import Client, Scope
from keys.api import KEYS_READ, KEYS_WRITE
from keys.models import ApiKey, CompromiseResponse
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import API, REVOKE_URL, client_credentials
from tests.keys.conftest import KEYS, api_token, bearer, get, post

pytestmark = pytest.mark.django_db


def _expired(http: Any) -> str:
    _, token = api_token(http, [KEYS_READ, KEYS_WRITE])
    AccessToken.objects.filter(token_checksum=credentials.digest(token)).update(
        expires=timezone.now() - timedelta(seconds=1))
    return token


def _revoked(http: Any) -> str:
    app, secret = make_client(name="revoker", scopes=[KEYS_READ, KEYS_WRITE], audiences=[management_api_audience()])
    token = client_credentials(http, app, secret).json()["access_token"]
    assert get(http, KEYS, token).status_code == 200  # works, and is now in the in-process cache
    response = http.post(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    assert response.status_code == 200
    return token


def _compromised(http: Any) -> str:
    app, token = api_token(http, [KEYS_READ, KEYS_WRITE])
    Client.objects.filter(pk=app.pk).update(credentials_revoked_at=timezone.now() + timedelta(seconds=1))
    return token


def _other_audience(http: Any) -> str:
    # Same client, same scopes, but the token was asked for another API (RFC 8707 resource).
    _, token = api_token(http, [KEYS_READ, KEYS_WRITE], audiences=[RS_AUDIENCE, management_api_audience()],
                      resource=RS_AUDIENCE)
    return token


def _no_audience(http: Any) -> str:
    _, token = api_token(http, [KEYS_READ, KEYS_WRITE], audiences=[])
    return token


def _api_key(http: Any) -> str:
    app, _ = make_client(name="key owner", scopes=[KEYS_READ], audiences=[management_api_audience()])
    return api_key_create(client=app, name="not a token")[1]


# (name, Authorization header built from a token factory) → 401 invalid_token
INVALID_TOKENS = [
    pytest.param(lambda http: "at_garbage", id="malformed"),
    pytest.param(lambda http: "", id="empty"),
    pytest.param(lambda http: "at_" + "a" * 49, id="bad-checksum"),
    pytest.param(lambda http: "x" * 100_000, id="huge"),
    pytest.param(lambda http: credentials.mint("at"), id="unknown"),
    pytest.param(lambda http: credentials.mint("rt"), id="refresh-token-type"),
    pytest.param(_api_key, id="api-key-is-not-a-token"),
    pytest.param(_expired, id="expired"),
    pytest.param(_revoked, id="revoked"),
    pytest.param(_compromised, id="client-compromise-response"),
    pytest.param(_other_audience, id="audience-is-another-api"),
    pytest.param(_no_audience, id="no-audience"),
]


@pytest.mark.parametrize("make_token", INVALID_TOKENS)
def test_invalid_token_is_401_invalid_token(client, make_token):
    token = make_token(client)
    response = get(client, KEYS, token)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
    assert response["Cache-Control"] == "no-store"
    # One answer for every reason: nothing tells an attacker which one applied.
    assert response.json()["error_description"] == (
        "The access token is invalid, expired or revoked, or was not issued for this API.")


@pytest.mark.parametrize(
    "header",
    ["Bearer garbage", "Bearer ", "Bearer", "bearer at_x", "Bearer at_" + "a" * 49, "Bearer " + "a" * 5000,
     "Bearer at_" + "é" * 49],
    ids=["garbage", "empty", "scheme-only", "lowercase-scheme", "bad-checksum", "long", "unicode"],
)
def test_malformed_tokens_cost_no_database_query(client, header):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(KEYS, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert len(queries) == 0, queries.captured_queries


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": basic_auth("someone", "secret")}, {"HTTP_AUTHORIZATION": "Digest x"}],
    ids=["no-header", "basic", "digest"],
)
def test_no_bearer_credentials_is_401_without_error_code(client, headers):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(KEYS, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver"'  # RFC 6750 §3.1: no error code
    assert response.json()["error"] == "unauthorized"
    assert len(queries) == 0


def test_session_login_does_not_authenticate(client, admin_user):
    client.force_login(admin_user)
    assert client.get(KEYS).status_code == 401
    assert post(client, KEYS, None, {"client_id": "x", "name": "y"}).status_code == 401


@pytest.mark.parametrize("with_header", [False, True], ids=["query-only", "query-and-header"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_token_in_query_string_never_authenticates(client, admin, owner, with_header, method):
    _, token = admin
    headers = bearer(token) if with_header else {}
    if method == "get":
        response = client.get(f"{KEYS}?access_token={token}", **headers)
    else:
        response = client.post(f"{KEYS}?access_token={token}", json.dumps({"client_id": owner.client_id,
                                                                            "name": "x"}),
                               content_type="application/json", **headers)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    assert response["WWW-Authenticate"].startswith('Bearer realm="authserver", error="invalid_request"')
    assert not ApiKey.objects.exists()


def test_token_in_body_does_not_authenticate(client, admin, owner):
    _, token = admin
    response = post(client, KEYS, None, {"client_id": owner.client_id, "name": "x", "access_token": token})
    assert response.status_code == 401
    assert not ApiKey.objects.exists()


# (method, path template, body) of every operation, with the scope it needs.
READS = [
    pytest.param("get", API + "keys", None, id="list"),
    pytest.param("get", API + "keys/{key}", None, id="retrieve"),
    pytest.param("get", API + "keys/{key}/usage", None, id="usage"),
]
WRITES = [
    pytest.param("post", API + "keys", {"client_id": "{client}", "name": "n"}, id="create"),
    pytest.param("post", API + "keys/{key}/rotate", {}, id="rotate"),
    pytest.param("post", API + "keys/{key}/revoke", {}, id="revoke"),
    pytest.param("post", API + "keys/{key}/suspend", {}, id="suspend"),
    pytest.param("post", API + "keys/{key}/resume", {}, id="resume"),
    pytest.param("post", API + "clients/{client}/revoke-all", {}, id="revoke-all"),
]


def _call(http: Any, method: str, template: str, body: Any, token: str, key: ApiKey) -> Any:
    url = template.format(key=key.pk, client=key.client.client_id)
    if method == "get":
        return get(http, url, token)
    return post(http, url, token, {k: v.format(client=key.client.client_id) for k, v in (body or {}).items()})


@pytest.mark.parametrize(("method", "template", "body"), WRITES)
@pytest.mark.parametrize("scopes", [[KEYS_READ], ["ai.infer"]], ids=["read-scope", "unrelated-scope"])
def test_write_without_write_scope_is_403(client, owner, method, template, body, scopes):
    key, _ = api_key_create(client=owner, name="k")
    _, token = api_token(client, scopes)
    before = list(ApiKey.objects.values_list("id", "status", "version"))
    response = _call(client, method, template, body, token, key)
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "insufficient_scope"
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="authserver", error="insufficient_scope", scope="{KEYS_WRITE}"')
    assert list(ApiKey.objects.values_list("id", "status", "version")) == before
    assert not CompromiseResponse.objects.exists()
    assert Client.objects.get(pk=owner.pk).credentials_revoked_at is None


@pytest.mark.parametrize(("method", "template", "body"), READS)
@pytest.mark.parametrize("scopes", [[KEYS_WRITE], ["ai.infer"]], ids=["write-scope", "unrelated-scope"])
def test_read_without_read_scope_is_403(client, owner, method, template, body, scopes):
    key, _ = api_key_create(client=owner, name="k")
    _, token = api_token(client, scopes)
    response = _call(client, method, template, body, token, key)
    assert response.status_code == 403, response.content
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="authserver", error="insufficient_scope", scope="{KEYS_READ}"')


@pytest.mark.parametrize(("method", "template", "body"), READS)
def test_read_scope_reads(client, owner, method, template, body):
    key, _ = api_key_create(client=owner, name="k")
    _, token = api_token(client, [KEYS_READ])
    assert _call(client, method, template, body, token, key).status_code == 200


@pytest.mark.parametrize(("method", "template", "body"), READS + WRITES)
def test_every_operation_refuses_anonymous_callers(client, owner, method, template, body):
    key, _ = api_key_create(client=owner, name="k")
    url = template.format(key=key.pk, client=owner.client_id)
    response = getattr(client, method)(url, content_type="application/json") if method == "post" else client.get(url)
    assert response.status_code == 401
    assert ApiKey.objects.get(pk=key.pk).status == "active"


def test_scopes_exist_with_descriptions():
    """Created by keys/migrations/0003 (this test runs before any transactional test flushes them)."""
    scopes = dict(Scope.objects.filter(name__in=[KEYS_READ, KEYS_WRITE]).values_list("name", "description"))
    assert set(scopes) == {KEYS_READ, KEYS_WRITE}
    assert all(scopes.values())


def test_scope_migration_is_reversible():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("keys.migrations.0003_management_api_scopes")
    migration.remove(apps, None)
    assert not Scope.objects.filter(name__in=[KEYS_READ, KEYS_WRITE]).exists()
    migration.create(apps, None)
    migration.create(apps, None)  # idempotent
    assert Scope.objects.filter(name__in=[KEYS_READ, KEYS_WRITE]).count() == 2
