"""The API-key management REST API: bearer-token authentication, scopes, the key lifecycle, schema."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone

from authserver import credentials
from authserver import urls as root_urls
from authserver.api_auth import management_api_audience
from authserver.oauth.models import AccessToken
from clients.models import Client, Scope
from keys.api import KEYS_READ, KEYS_WRITE
from keys.models import ApiKey, ApiKeyUsage, CompromiseResponse
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import REVOKE_URL, client_credentials, introspect

# Until authserver/urls.py mounts the API, this module serves as the URLconf: the project's URLs
# plus the management API (never twice).
urlpatterns = list(root_urls.urlpatterns)
if not any(str(p.pattern) == "api/v1/" for p in urlpatterns):
    urlpatterns.append(path("api/v1/", include("keys.api_urls")))

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

KEYS = "/api/v1/keys"
SCHEMA = "/api/v1/schema"


# -- Fixtures and helpers --------------------------------------------------------------------------

def _token(http: Any, scopes: list[str], audiences: list[str] | None = None, **extra: str) -> tuple[Any, str]:
    """A client_credentials access token of a fresh client: ``(client, token)``."""
    audiences = [management_api_audience()] if audiences is None else audiences
    app, secret = make_client(name="admin", scopes=scopes, audiences=audiences)
    response = client_credentials(http, app, secret, **extra)
    assert response.status_code == 200, response.content
    return app, response.json()["access_token"]


@pytest.fixture
def admin(client: Any) -> tuple[Any, str]:
    return _token(client, [KEYS_READ, KEYS_WRITE])


@pytest.fixture
def owner(db: Any) -> Any:
    app, _ = make_client(name="customer", scopes=["ai.infer", "ai.embed"], audiences=[RS_AUDIENCE])
    return app


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(http: Any, url: str, token: str | None, body: Any = None, **headers: Any) -> Any:
    if token is not None:
        headers.update(bearer(token))
    return http.post(url, json.dumps(body if body is not None else {}), content_type="application/json", **headers)


def get(http: Any, url: str, token: str | None, data: dict[str, Any] | None = None, **headers: Any) -> Any:
    if token is not None:
        headers.update(bearer(token))
    return http.get(url, data or {}, **headers)


def create_key(http: Any, token: str, owner: Any, **body: Any) -> Any:
    return post(http, KEYS, token, {"client_id": owner.client_id, "name": "prod", **body})


# -- Authentication --------------------------------------------------------------------------------

def _expired(http: Any) -> str:
    _, token = _token(http, [KEYS_READ, KEYS_WRITE])
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
    app, token = _token(http, [KEYS_READ, KEYS_WRITE])
    Client.objects.filter(pk=app.pk).update(credentials_revoked_at=timezone.now() + timedelta(seconds=1))
    return token


def _other_audience(http: Any) -> str:
    # Same client, same scopes, but the token was asked for another API (RFC 8707 resource).
    _, token = _token(http, [KEYS_READ, KEYS_WRITE], audiences=[RS_AUDIENCE, management_api_audience()],
                      resource=RS_AUDIENCE)
    return token


def _no_audience(http: Any) -> str:
    _, token = _token(http, [KEYS_READ, KEYS_WRITE], audiences=[])
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
    pytest.param("get", "/api/v1/keys", None, id="list"),
    pytest.param("get", "/api/v1/keys/{key}", None, id="retrieve"),
    pytest.param("get", "/api/v1/keys/{key}/usage", None, id="usage"),
]
WRITES = [
    pytest.param("post", "/api/v1/keys", {"client_id": "{client}", "name": "n"}, id="create"),
    pytest.param("post", "/api/v1/keys/{key}/rotate", {}, id="rotate"),
    pytest.param("post", "/api/v1/keys/{key}/revoke", {}, id="revoke"),
    pytest.param("post", "/api/v1/keys/{key}/suspend", {}, id="suspend"),
    pytest.param("post", "/api/v1/keys/{key}/resume", {}, id="resume"),
    pytest.param("post", "/api/v1/clients/{client}/revoke-all", {}, id="revoke-all"),
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
    _, token = _token(client, scopes)
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
    _, token = _token(client, scopes)
    response = _call(client, method, template, body, token, key)
    assert response.status_code == 403, response.content
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="authserver", error="insufficient_scope", scope="{KEYS_READ}"')


@pytest.mark.parametrize(("method", "template", "body"), READS)
def test_read_scope_reads(client, owner, method, template, body):
    key, _ = api_key_create(client=owner, name="k")
    _, token = _token(client, [KEYS_READ])
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


# -- The lifecycle ---------------------------------------------------------------------------------

def test_full_lifecycle_seen_through_introspection(client, admin, owner, resource_server):
    app, token = admin
    rs, rs_secret = resource_server

    created = create_key(client, token, owner, scopes=["ai.infer"], audiences=[RS_AUDIENCE],
                         allowed_ips=["10.0.0.0/8"], expires_in="30d", rate_limit="100/m", quota=1000)
    assert created.status_code == 201, created.content
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    plaintext = body["key"]
    assert credentials.is_well_formed(plaintext, "ak")
    assert created["Location"] == f"{KEYS}/{body['id']}"
    assert body["hint"] == credentials.hint(plaintext)
    assert body["client_id"] == owner.client_id
    assert body["scopes"] == ["ai.infer"] and body["audiences"] == [RS_AUDIENCE]
    assert body["allowed_ips"] == ["10.0.0.0/8"]
    assert body["rate_limit"] == "100/60s" and body["quota"] == 1000
    assert body["status"] == "active" and body["created_by"] == f"api:{app.client_id}"
    assert "digest" not in body
    key = ApiKey.objects.get(pk=body["id"])
    assert abs(key.expires - key.created - timedelta(days=30)) < timedelta(seconds=5)
    assert key.created_by_label == f"api:{app.client_id}" and key.created_by is None

    answer = introspect(client, rs, rs_secret, plaintext, client_ip="10.1.2.3").json()
    assert answer["active"] is True and answer["key_id"] == body["id"] and answer["scope"] == "ai.infer"

    rotated = post(client, f"{KEYS}/{body['id']}/rotate", token, {"grace": "1h"})
    assert rotated.status_code == 201, rotated.content
    assert rotated["Cache-Control"] == "no-store"
    successor = rotated.json()
    new_plaintext = successor["key"]
    assert credentials.is_well_formed(new_plaintext, "ak") and new_plaintext != plaintext
    assert successor["previous_id"] == body["id"] and successor["rotated_from"] == body["id"]
    assert successor["previous_valid_until"] is not None
    assert (successor["scopes"], successor["rate_limit"], successor["allowed_ips"]) == (
        body["scopes"], body["rate_limit"], body["allowed_ips"])
    assert introspect(client, rs, rs_secret, plaintext, client_ip="10.1.2.3").json()["active"] is True  # grace
    assert introspect(client, rs, rs_secret, new_plaintext, client_ip="10.1.2.3").json()["active"] is True
    # Rotating the rotated key again is a policy error.
    again = post(client, f"{KEYS}/{body['id']}/rotate", token, {})
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"

    suspended = post(client, f"{KEYS}/{successor['id']}/suspend", token)
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert introspect(client, rs, rs_secret, new_plaintext, client_ip="10.1.2.3").json() == {"active": False}
    resumed = post(client, f"{KEYS}/{successor['id']}/resume", token)
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert introspect(client, rs, rs_secret, new_plaintext, client_ip="10.1.2.3").json()["active"] is True

    for key_id, value in ((successor["id"], new_plaintext), (body["id"], plaintext)):
        revoked = post(client, f"{KEYS}/{key_id}/revoke", token)
        assert revoked.status_code == 200, revoked.content
        assert revoked.json()["status"] == "revoked" and revoked.json()["revoked"] is not None
        assert introspect(client, rs, rs_secret, value, client_ip="10.1.2.3").json() == {"active": False}
    assert post(client, f"{KEYS}/{body['id']}/revoke", token).status_code == 200  # idempotent
    resume_revoked = post(client, f"{KEYS}/{body['id']}/resume", token)
    assert resume_revoked.status_code == 400 and "revoked" in resume_revoked.json()["error_description"]

    # Every write is in the audit trail under the calling client.
    from authserver.audit.models import AuditEvent

    events = set(AuditEvent.objects.filter(actor=f"api:{app.client_id}").values_list("event", flat=True))
    assert {"api_key.created", "api_key.rotated", "api_key.suspended", "api_key.resumed",
            "api_key.revoked"} <= events

    listing = get(client, KEYS, token)
    retrieve = get(client, f"{KEYS}/{body['id']}", token)
    for response in (listing, retrieve):
        assert response.status_code == 200
        text = response.content.decode()
        assert plaintext not in text and new_plaintext not in text
        assert key.digest not in text and '"key"' not in text and "digest" not in text


def test_plaintext_is_never_shown_again(client, admin, owner):
    _, token = admin
    plaintexts = [create_key(client, token, owner, name=f"k{i}").json()["key"] for i in range(3)]
    key_ids = list(ApiKey.objects.values_list("id", flat=True))
    responses = [get(client, KEYS, token), get(client, KEYS, token, {"client": owner.client_id})]
    responses += [get(client, f"{KEYS}/{key_id}", token) for key_id in key_ids]
    responses += [get(client, f"{KEYS}/{key_id}/usage", token) for key_id in key_ids]
    digests = list(ApiKey.objects.values_list("digest", flat=True))
    for response in responses:
        assert response.status_code == 200
        text = response.content.decode()
        assert not [p for p in plaintexts if p in text] and not [d for d in digests if d in text]


def test_list_filters_and_pagination(client, admin, owner):
    _, token = admin
    other, _ = make_client(name="other", scopes=["ai.infer"])
    for i in range(3):
        api_key_create(client=owner, name=f"mine{i}")
    suspended, _ = api_key_create(client=other, name="theirs")
    post(client, f"{KEYS}/{suspended.pk}/suspend", token)

    everything = get(client, KEYS, token).json()
    assert everything["count"] == 4 and len(everything["results"]) == 4
    assert [k["name"] for k in everything["results"]][0] == "theirs"  # newest first
    mine = get(client, KEYS, token, {"client": owner.client_id}).json()
    assert {k["name"] for k in mine["results"]} == {"mine0", "mine1", "mine2"}
    assert [k["name"] for k in get(client, KEYS, token, {"status": "suspended"}).json()["results"]] == ["theirs"]
    assert get(client, KEYS, token, {"client": "nobody"}).json()["count"] == 0
    page = get(client, KEYS, token, {"page_size": 3, "page": 2}).json()
    assert page["count"] == 4 and len(page["results"]) == 1 and page["previous"] is not None
    bad = get(client, KEYS, token, {"status": "bogus"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert get(client, KEYS, token, {"page": 99}).status_code == 404


# (body overrides, field mentioned in the description)
BAD_CREATES = [
    pytest.param({"client_id": "nobody"}, "client_id", id="unknown-client"),
    pytest.param({"name": ""}, "name", id="empty-name"),
    pytest.param({"name": "x" * 101}, "name", id="long-name"),
    pytest.param({"scopes": ["ai.admin"]}, "ai.admin", id="scope-not-allowed"),
    pytest.param({"scopes": "ai.infer"}, "scopes", id="scopes-not-a-list"),
    pytest.param({"audiences": ["https://evil.example"]}, "audience", id="audience-not-allowed"),
    pytest.param({"allowed_ips": ["10.0.0.1/8"]}, "10.0.0.1/8", id="bad-cidr"),
    pytest.param({"expires_in": "forever"}, "expires_in", id="bad-duration"),
    pytest.param({"expires_in": 0}, "expires_in", id="zero-lifetime"),
    pytest.param({"expires_in": "3650d"}, "expiry", id="beyond-maximum"),
    pytest.param({"expires_in": True}, "expires_in", id="boolean-duration"),
    pytest.param({"rate_limit": "100"}, "rate_limit", id="bad-rate-limit"),
    pytest.param({"rate_limit": "0/m"}, "rate limit", id="zero-rate-limit"),
    pytest.param({"quota": 0}, "quota", id="zero-quota"),
    pytest.param({"scope": "ai.infer"}, "scope", id="unknown-field"),
]


@pytest.mark.parametrize(("override", "mentioned"), BAD_CREATES)
def test_create_refusals_are_400_json(client, admin, owner, override, mentioned):
    _, token = admin
    response = create_key(client, token, owner, **override)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_request" and mentioned in body["error_description"]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null", '"string"'])
def test_create_with_a_broken_body_is_400(client, admin, body):
    _, token = admin
    response = client.post(KEYS, body, content_type="application/json", **bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "parse_error"}


def test_create_form_encoded_is_415(client, admin, owner):
    _, token = admin
    response = client.post(KEYS, {"client_id": owner.client_id, "name": "x"}, **bearer(token))
    assert response.status_code == 415
    assert not ApiKey.objects.exists()


def test_create_defaults_to_the_clients_policy(client, admin, owner):
    _, token = admin
    body = create_key(client, token, owner).json()
    assert sorted(body["scopes"]) == ["ai.embed", "ai.infer"] and body["audiences"] == [RS_AUDIENCE]
    assert body["rate_limit"] is None and body["quota"] is None and body["allowed_ips"] == []


@pytest.mark.parametrize("expires_in", [86400, "86400", "1d", "24h"])
def test_expires_in_accepts_seconds_or_suffix(client, admin, owner, expires_in):
    _, token = admin
    body = create_key(client, token, owner, expires_in=expires_in).json()
    key = ApiKey.objects.get(pk=body["id"])
    assert abs(key.expires - key.created - timedelta(days=1)) < timedelta(seconds=5)


@pytest.mark.parametrize(("grace", "old_status"), [(0, "revoked"), ("0s", "revoked"), (3600, "active"),
                                                   ("24h", "active"), (None, "active")])
def test_rotate_grace(client, admin, owner, grace, old_status):
    _, token = admin
    key, _ = api_key_create(client=owner, name="k")
    response = post(client, f"{KEYS}/{key.pk}/rotate", token, {} if grace is None else {"grace": grace})
    assert response.status_code == 201, response.content
    assert ApiKey.objects.get(pk=key.pk).status == old_status


@pytest.mark.parametrize("grace", ["31d", -1, "soon"])
def test_rotate_bad_grace_is_400(client, admin, owner, grace):
    _, token = admin
    key, _ = api_key_create(client=owner, name="k")
    response = post(client, f"{KEYS}/{key.pk}/rotate", token, {"grace": grace})
    assert response.status_code == 400
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize(
    "key_id",
    ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "1", "%00", "' OR 1=1 --", "x" * 300],
    ids=["unknown", "not-uuid", "integer", "nul", "sql", "long"],
)
@pytest.mark.parametrize("suffix", ["", "/usage", "/rotate", "/revoke", "/suspend", "/resume"])
def test_unknown_or_malformed_key_id_is_404_json(client, admin, key_id, suffix):
    _, token = admin
    url = f"{KEYS}/{key_id}{suffix}"
    response = get(client, url, token) if suffix in {"", "/usage"} else post(client, url, token)
    assert response.status_code == 404, response.content
    assert response.json()["error"] == "not_found"


def test_usage_fills_missing_buckets(client, admin, owner):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    now = timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    ApiKeyUsage.objects.create(key=key, hour=this_hour, requests=5)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(hours=3), requests=7)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(days=2), requests=11)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(days=40), requests=1000)  # outside
    ApiKey.objects.filter(pk=key.pk).update(uses=1023, last_used=now, last_used_ip="198.51.100.4")

    hourly = get(client, f"{KEYS}/{key.pk}/usage", token, {"granularity": "hour", "days": 1})
    assert hourly.status_code == 200, hourly.content
    body = hourly.json()
    assert set(body) == {"key_id", "granularity", "start", "end", "total", "uses", "last_used", "last_used_ip",
                         "buckets"}
    assert body["key_id"] == str(key.pk) and body["granularity"] == "hour"
    assert len(body["buckets"]) == 24 and body["total"] == 12
    assert [b["requests"] for b in body["buckets"]][-4:] == [7, 0, 0, 5]
    assert body["uses"] == 1023 and body["last_used_ip"] == "198.51.100.4" and body["last_used"] is not None
    starts = [b["start"] for b in body["buckets"]]
    assert starts == sorted(starts) and body["start"] == starts[0]

    daily = get(client, f"{KEYS}/{key.pk}/usage", token).json()  # defaults: day, 30 days
    assert daily["granularity"] == "day" and len(daily["buckets"]) == 30
    assert daily["total"] == 23
    assert sum(b["requests"] for b in daily["buckets"]) == 23
    assert all(set(b) == {"start", "requests"} for b in daily["buckets"])


@pytest.mark.parametrize("query", [{"granularity": "minute"}, {"days": 0}, {"days": 91}, {"days": "x"}])
def test_usage_bad_query_is_400(client, admin, owner, query):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    response = get(client, f"{KEYS}/{key.pk}/usage", token, query)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_usage_of_an_unused_key_is_all_zero(client, admin, owner):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    body = get(client, f"{KEYS}/{key.pk}/usage", token, {"granularity": "hour", "days": 2}).json()
    assert len(body["buckets"]) == 48 and body["total"] == 0 and body["last_used"] is None


def test_revoke_all_is_a_compromise_response(client, admin, owner, resource_server):
    app, token = admin
    rs, rs_secret = resource_server
    _, plaintext = api_key_create(client=owner, name="k")
    assert introspect(client, rs, rs_secret, plaintext).json()["active"] is True
    response = post(client, f"/api/v1/clients/{owner.client_id}/revoke-all", token)
    assert response.status_code == 202, response.content
    body = response.json()
    record = CompromiseResponse.objects.get(pk=body["response_id"])
    assert record.client == owner and record.requested_by == f"api:{app.client_id}"
    assert body["client_id"] == owner.client_id and body["status"] in {"pending", "running", "done"}
    assert introspect(client, rs, rs_secret, plaintext).json() == {"active": False}
    assert get(client, KEYS, token).status_code == 200  # the admin's own token is unaffected


def test_revoke_all_of_unknown_client_is_404(client, admin):
    _, token = admin
    response = post(client, "/api/v1/clients/nobody/revoke-all", token)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not CompromiseResponse.objects.exists()


@pytest.mark.parametrize(("method", "url"), [("put", KEYS), ("delete", KEYS + "/{key}"), ("patch", KEYS + "/{key}"),
                                             ("get", KEYS + "/{key}/revoke"), ("options", KEYS)])
def test_other_methods_are_405_json(client, admin, owner, method, url):
    _, token = admin
    key, _ = api_key_create(client=owner, name="k")
    response = getattr(client, method)(url.format(key=key.pk), content_type="application/json", **bearer(token))
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert ApiKey.objects.get(pk=key.pk).status == "active"


# -- OpenAPI ---------------------------------------------------------------------------------------

EXPECTED_PATHS = {
    "/api/v1/keys": {"get", "post"},
    "/api/v1/keys/{id}": {"get"},
    "/api/v1/keys/{id}/rotate": {"post"},
    "/api/v1/keys/{id}/revoke": {"post"},
    "/api/v1/keys/{id}/suspend": {"post"},
    "/api/v1/keys/{id}/resume": {"post"},
    "/api/v1/keys/{id}/usage": {"get"},
    "/api/v1/clients/{client_id}/revoke-all": {"post"},
}


def test_schema_endpoint_serves_valid_openapi(client):
    from drf_spectacular.validation import validate_schema

    response = client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert {p: {m for m in ops if m != "parameters"} for p, ops in schema["paths"].items()} == EXPECTED_PATHS
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"]}
    for ops in schema["paths"].values():
        for op in ops.values():
            assert op["security"] == [{"bearerAuth": []}]
    created = schema["components"]["schemas"]["ApiKeyCreated"]["properties"]
    assert "key" in created and "key" not in schema["components"]["schemas"]["ApiKey"]["properties"]
    assert "digest" not in json.dumps(schema)


def test_spectacular_command_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), "--urlconf", __name__)
    text = out.read_text()
    assert "/api/v1/keys/{id}/rotate:" in text and "bearerAuth" in text
