"""The registration attack table (issue 16, "Done when"): every request refused with its RFC 7591 §3.2.2
error (RFC 6750 §3.1 for tokens), nothing created, and the refusal audited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from authserver.audit.models import AuditEvent
from clients.registration.metadata import MAX_BODY_BYTES
from clients.registration.models import InitialAccessToken
from clients.registration.services import initial_access_token_create
from tests.clients.registration.conftest import GOOD, counts, last_event, post

pytestmark = pytest.mark.django_db

META, URI = "invalid_client_metadata", "invalid_redirect_uri"


def _with(**members: Any) -> dict[str, Any]:
    return {**GOOD, **members}


def _without(member: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != member}


BAD_REDIRECTS = [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "http://agent.example.test/cb",
    "http://localhost/cb", "http://192.168.1.10/cb", "com.example.agent:/cb", "myapp://callback",
    "https://user:pw@agent.example.test/cb", "https://agent.example.test/cb#frag", "https://*.example.test/cb",
    "https://agent.example.test/*", "https:agent.example.test/cb", "https://AGENT.example.test/cb",
    "https://agent.example.test\\@evil.test/cb", "file:///etc/passwd", "//agent.example.test/cb", "",
    "https://agent.example.test/c b", "https://xn--80ak6aa92e.com/cb\u0000", "https://a" + "a" * 2000 + ".test/",
]

TABLE = [
    *[pytest.param(_with(redirect_uris=[uri]), URI, "redirect_uri_refused", id=f"redirect-{i}")
      for i, uri in enumerate(BAD_REDIRECTS)],
    pytest.param(_with(redirect_uris=["http://127.0.0.1/cb", "javascript:x"]), URI, "redirect_uri_refused",
                 id="one-bad-redirect-among-good"),
    pytest.param(_without("redirect_uris"), URI, "redirect_uris_missing", id="no-redirect-uris"),
    pytest.param(_with(redirect_uris=[]), URI, "redirect_uris_missing", id="empty-redirect-uris"),
    pytest.param(_with(redirect_uris="http://127.0.0.1/cb"), META, "redirect_uris_type", id="redirect-uris-string"),
    pytest.param(_with(redirect_uris=[f"http://127.0.0.1/{i}" for i in range(11)]), META, "redirect_uris_too_many",
                 id="too-many-redirect-uris"),
    *[pytest.param(_with(grant_types=grants), META, "grant_types", id=f"grant-{grants[0]}") for grants in (
        ["client_credentials"], ["implicit"], ["password"], ["urn:ietf:params:oauth:grant-type:device_code"],
        ["urn:ietf:params:oauth:grant-type:token-exchange"], ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
        ["refresh_token"], ["authorization_code", "client_credentials"])],
    pytest.param(_with(grant_types=[1]), META, "grant_types_type", id="grant-not-a-string"),
    *[pytest.param(_with(response_types=types), META, "response_types", id=f"response-{'+'.join(types)}")
      for types in (["token"], ["code", "token"], ["id_token"], ["none"])],
    *[pytest.param(_with(token_endpoint_auth_method=method), META, "auth_method", id=f"auth-{method}")
      for method in ("private_key_jwt", "client_secret_jwt", "tls_client_auth", "", 1)],
    pytest.param(_with(scope="ai.admin"), META, "scope_not_registrable", id="scope-beyond-registrable"),
    pytest.param(_with(scope="ai.infer ai.admin"), META, "scope_not_registrable", id="scope-one-beyond"),
    pytest.param(_with(scope="openid"), META, "scope_not_registrable", id="scope-unknown"),
    pytest.param(_with(scope=["ai.infer"]), META, "scope_type", id="scope-not-a-string"),
    pytest.param(_with(resources=["https://other-api.example.test"]), META, "resource_not_registrable",
                 id="audience-beyond-registrable"),
    pytest.param(_with(resources="https://api.example.test"), META, "resources_type", id="audience-not-an-array"),
    pytest.param(_with(client_name="x" * 101), META, "client_name_too_long", id="name-too-long"),
    pytest.param(_with(client_name="Agent\u202eevil"), META, "client_name_unprintable", id="name-bidi-override"),
    pytest.param(_with(client_name="Agent\nAdmin"), META, "client_name_unprintable", id="name-newline"),
    pytest.param(_with(client_name={"en": "x"}), META, "client_name_type", id="name-not-a-string"),
    pytest.param(_with(scope="ai.infer " * 200), META, "scope_too_long", id="scope-too-long"),
    pytest.param(_with(logo_uri="https://x.test/" + "a" * MAX_BODY_BYTES), META, "body_too_large", id="oversized-body"),
    pytest.param("{not json", META, "malformed_json", id="malformed-json"),
    pytest.param('["a list"]', META, "not_an_object", id="json-array"),
    pytest.param("null", META, "not_an_object", id="json-null"),
    pytest.param(b"\xff\xfe{}", META, "malformed_json", id="not-utf8"),
    pytest.param('{"client_name": "a\\u0000b", "redirect_uris": ["http://127.0.0.1/cb"]}', META,
                 "client_name_unprintable", id="nul-escaped"),
    pytest.param('{"client_name": "a\u0000b", "redirect_uris": ["http://127.0.0.1/cb"]}', META, "malformed_json",
                 id="nul-raw"),
]


@pytest.mark.parametrize(("body", "error", "reason"), TABLE)
def test_refused_nothing_created_and_audited(client: Any, dcr: Any, body: Any, error: str, reason: str) -> None:
    before = counts()
    response = post(client, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == error and response["Cache-Control"] == "no-store"
    assert counts() == before
    event = last_event("client.registration_refused")
    assert event.details == {"error": error, "reason": reason} and event.outcome == "failure"


@pytest.mark.parametrize("name", ["web app", "WEB APP", " Web App "])
def test_a_name_an_operator_registered_is_refused(client: Any, dcr: Any, web_client: Any, name: str) -> None:
    assert web_client[0].name == "web app"
    before = counts()
    response = post(client, _with(client_name=name))
    assert response.status_code == 400 and response.json()["error"] == META and counts() == before
    assert last_event("client.registration_refused").details["reason"] == "client_name_taken"
    # Other agents' names are not taken: every installation of one agent registers itself.
    assert [post(client, _with(client_name="Agent")).status_code for _ in range(2)] == [201, 201]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
def test_wrong_content_type_is_refused(client: Any, dcr: Any, content_type: str) -> None:
    before = counts()
    response = post(client, json.dumps(GOOD), content_type=content_type)
    assert response.status_code == 400 and response.json()["error"] == META
    assert counts() == before and last_event("client.registration_refused").details["reason"] == "content_type"


def test_a_lying_content_length_is_refused_before_the_body_is_read(client: Any, dcr: Any) -> None:
    before = counts()
    response = client.generic("POST", "/oauth/register", json.dumps(GOOD), content_type="application/json",
                              CONTENT_LENGTH=str(10 * MAX_BODY_BYTES))
    assert response.status_code == 400 and counts() == before


def test_a_registration_flood_is_limited_per_address(client: Any, dcr: Any) -> None:
    dcr.RATE_LIMITS = {**dcr.RATE_LIMITS, "register.ip": ("3/3600", "closed")}
    assert [post(client, GOOD).status_code for _ in range(3)] == [201, 201, 201]
    before = counts()
    flood = [post(client, GOOD) for _ in range(5)]
    assert {r.status_code for r in flood} == {429} and int(flood[0]["Retry-After"]) > 0
    assert counts() == before
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:register.ip").count() == 1
    # Bad requests count too (a flood of garbage is a flood), and so does management.
    assert post(client, "{garbage").status_code == 429
    assert client.get("/oauth/register/x", HTTP_AUTHORIZATION="Bearer x").status_code == 429


def _token(**kwargs: Any) -> str:
    return initial_access_token_create(actor="test", **kwargs)[1]


def _expired() -> str:
    token, value = initial_access_token_create(actor="test", expires_in=timedelta(seconds=60))
    InitialAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return value


def _used_up() -> str:
    value = _token(uses=1)
    InitialAccessToken.objects.update(uses=1)
    return value


def _revoked() -> str:
    value = _token()
    InitialAccessToken.objects.update(revoked_at=timezone.now())
    return value


@pytest.mark.parametrize(("make", "reason"), [
    pytest.param(lambda: None, "iat_missing", id="no-token"),
    pytest.param(lambda: "iat_garbage", "iat_malformed", id="malformed"),
    pytest.param(lambda: "iat_" + "A" * 49, "iat_malformed", id="bad-checksum"),
    pytest.param(lambda: __import__("authserver.credentials").credentials.mint("iat"), "iat_unknown", id="unknown"),
    pytest.param(lambda: __import__("authserver.credentials").credentials.mint("rat"), "iat_malformed",
                 id="a-registration-token"),
    pytest.param(_expired, "iat_expired", id="expired"),
    pytest.param(_used_up, "iat_used_up", id="used-up"),
    pytest.param(_revoked, "iat_revoked", id="revoked"),
])
def test_token_mode_refuses_without_a_usable_initial_access_token(client: Any, dcr: Any, make: Any,
                                                                  reason: str) -> None:
    dcr.DCR = "token"
    value = make()
    before = counts()
    response = post(client, GOOD, token=value)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"] == ("Bearer" if value is None else
                                            'Bearer error="invalid_token", '
                                            'error_description="a valid initial access token is required"')
    assert counts() == before
    assert last_event("client.registration_refused").details == {"error": "invalid_token", "reason": reason}


def test_token_mode_registers_exactly_as_many_clients_as_the_token_allows(client: Any, dcr: Any) -> None:
    dcr.DCR = "token"
    value = _token(uses=2)
    assert [post(client, GOOD, token=value).status_code for _ in range(3)] == [201, 201, 401]
    assert InitialAccessToken.objects.get().uses == 2
    event = last_event("client.registered")
    assert event.actor == f"iat:{InitialAccessToken.objects.get().pk}"
    # A bad body with a good token does not spend a use.
    other = _token(uses=1)
    assert post(client, {"redirect_uris": ["javascript:x"]}, token=other).status_code == 400
    assert post(client, GOOD, token=other).status_code == 201


def test_urls_in_the_metadata_are_never_fetched(client: Any, dcr: Any, monkeypatch: Any) -> None:
    import socket

    def no_connection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"outbound connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_connection)
    monkeypatch.setattr(socket, "create_connection", no_connection)
    metadata = "http://169.254.169.254/latest/meta-data/"
    body = _with(jwks_uri=metadata, logo_uri=metadata, client_uri=metadata, tos_uri=metadata, policy_uri=metadata,
                 sector_identifier_uri=metadata, software_statement="eyJ." * 10)
    response = post(client, body)
    assert response.status_code == 201 and not {"jwks_uri", "logo_uri", "client_uri"} & set(response.json())


@pytest.mark.parametrize(("change", "error", "reason"), [
    pytest.param({"client_id": "someone-else"}, META, "client_id", id="other-client-id"),
    pytest.param({"client_id": None}, META, "client_id", id="no-client-id"),
    pytest.param({"registration_access_token": "rat_x"}, META, "server_member_sent", id="sends-the-token"),
    pytest.param({"client_secret": "cs_x"}, META, "server_member_sent", id="sends-a-secret"),
    pytest.param({"client_id_issued_at": 1}, META, "server_member_sent", id="sends-issued-at"),
    pytest.param({"redirect_uris": ["http://evil.example/cb"]}, URI, "redirect_uri_refused", id="bad-redirect"),
    pytest.param({"grant_types": ["client_credentials"]}, META, "grant_types", id="client-credentials"),
    pytest.param({"scope": "ai.admin"}, META, "scope_not_registrable", id="scope-beyond-registrable"),
])
def test_a_refused_update_changes_nothing(client: Any, dcr: Any, change: dict[str, Any], error: str,
                                          reason: str) -> None:
    from clients.models import Client
    from clients.registration.models import Registration

    body = post(client, GOOD).json()
    uri = f"/oauth/register/{body['client_id']}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {body['registration_access_token']}"}
    before = (Client.objects.values().get(client_id=body["client_id"]), Registration.objects.values().get())
    response = client.put(uri, json.dumps({**GOOD, "client_id": body["client_id"], **change}),
                          content_type="application/json", **auth)
    assert response.status_code == 400 and response.json()["error"] == error
    assert (Client.objects.values().get(client_id=body["client_id"]), Registration.objects.values().get()) == before
    event = last_event("client.registration_refused")
    assert event.details == {"error": error, "reason": reason} and event.subject == f"client:{body['client_id']}"
    assert client.get(uri, **auth).status_code == 200  # the token still works
