"""RFC 7591 registration and RFC 7592 management (clients.registration), and RFC 8414's member."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authserver import credentials
from authserver.oauth.models import AccessToken
from clients.models import Client
from clients.registration.models import Registration
from tests.clients.registration.conftest import GOOD, NATIVE, REGISTER, counts, last_event, post
from tests.factories import RS_AUDIENCE
from tests.helpers import authorize, code_from, exchange_code, introspect, pkce_pair, refresh

pytestmark = pytest.mark.django_db
METADATA = "/.well-known/oauth-authorization-server"


def test_registration_creates_a_public_code_client_within_the_policy(client: Any, dcr: Any) -> None:
    response = post(client, {**GOOD, "token_endpoint_auth_method": "client_secret_post", "jwks_uri": "https://x"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    # RFC 7591 §3.2.1: the secret method was replaced, and no secret exists.
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body
    assert body["grant_types"] == ["authorization_code", "refresh_token"] and body["response_types"] == ["code"]
    assert body["redirect_uris"] == [NATIVE] and body["client_name"] == "Agent"
    assert body["scope"] == "ai.infer" and body["resources"] == [RS_AUDIENCE] and "jwks_uri" not in body
    assert body["registration_client_uri"] == f"{dcr.ISSUER}/oauth/register/{body['client_id']}"
    rat = body["registration_access_token"]
    assert credentials.is_well_formed(rat, "rat")
    app = Client.objects.get(client_id=body["client_id"])
    assert app.registration_source == "dcr" and app.client_type == "public" and not app.client_secret
    assert [s.name for s in app.allowed_scopes.all()] == ["ai.infer"] and app.allowed_audiences == [RS_AUDIENCE]
    registration = Registration.objects.get(client=app)
    assert registration.token_digest == credentials.digest(rat) and rat not in str(registration.__dict__)
    event = last_event("client.registered")
    assert event.subject == f"client:{app.client_id}" and event.details["auth_method_requested"] == "client_secret_post"
    assert rat not in json.dumps(event.details)


def test_a_registered_client_completes_the_code_flow_and_is_marked_used(client: Any, dcr: Any, user: Any,
                                                                       resource_server: Any) -> None:
    body = post(client, GOOD).json()
    app = Client.objects.get(client_id=body["client_id"])
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, app, challenge=challenge, redirect_uri=NATIVE, resource=RS_AUDIENCE))
    tokens = exchange_code(client, app, None, code, verifier, redirect_uri=NATIVE).json()
    assert "access_token" in tokens, tokens
    assert Registration.objects.get(client=app).first_token_at is not None
    rs, rs_secret = resource_server
    assert introspect(client, rs, rs_secret, tokens["access_token"]).json()["active"] is True
    assert refresh(client, app, None, tokens["refresh_token"]).status_code == 200


def test_management_reads_updates_and_deletes_with_the_registration_access_token(
        client: Any, dcr: Any, user: Any, resource_server: Any) -> None:
    body = post(client, GOOD).json()
    uri, rat = body["registration_client_uri"].removeprefix(dcr.ISSUER), body["registration_access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {rat}"}
    read = client.get(uri, **auth)
    assert read.status_code == 200 and read.json()["client_id"] == body["client_id"]
    changed = {**GOOD, "client_id": body["client_id"], "client_name": "Renamed",
               "redirect_uris": ["https://agent.example.test/cb"]}
    updated = client.put(uri, json.dumps(changed), content_type="application/json", **auth)
    assert updated.status_code == 200, updated.content
    new_rat = updated.json()["registration_access_token"]
    assert new_rat != rat and updated.json()["client_name"] == "Renamed"
    assert client.get(uri, **auth).status_code == 401  # RFC 7592 §2.2: the old token stopped
    assert last_event("client.registration_updated").details["name"] == "Renamed"
    # A token of the client, then DELETE: the client is gone and its token refused at once.
    app = Client.objects.get(client_id=body["client_id"])
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, app, challenge=challenge, redirect_uri="https://agent.example.test/cb"))
    token = exchange_code(client, app, None, code, verifier, redirect_uri="https://agent.example.test/cb").json()
    deleted = client.delete(uri, HTTP_AUTHORIZATION=f"Bearer {new_rat}")
    assert deleted.status_code == 204
    assert not Client.objects.filter(client_id=body["client_id"]).exists() and not AccessToken.objects.exists()
    rs, rs_secret = resource_server
    assert introspect(client, rs, rs_secret, token["access_token"]).json() == {"active": False}
    assert last_event("client.registration_deleted").details["access_tokens"] == 1
    assert client.get(uri, HTTP_AUTHORIZATION=f"Bearer {new_rat}").status_code == 401


@pytest.mark.parametrize("token", [None, "garbage", "rat_" + "x" * 49, "other", "manual"])
def test_management_refuses_any_other_token(client: Any, dcr: Any, web_client: Any, token: str | None) -> None:
    body = post(client, GOOD).json()
    other = post(client, {**GOOD, "client_name": "Other"}).json()
    target = body["client_id"]
    value = {"other": other["registration_access_token"], "manual": body["registration_access_token"]}.get(token, token)
    if token == "manual":
        target = web_client[0].client_id  # a manually registered client is never managed through RFC 7592
    before = counts()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {value}"} if value else {}
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/oauth/register/{target}", **headers)
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert counts() == before and Client.objects.filter(client_id=target).exists()
    assert last_event("client.registration_refused").details == {"error": "invalid_token", "reason": "rat_invalid"}


@pytest.mark.parametrize("mode", ["open", "token"])
def test_metadata_names_the_registration_endpoint_only_when_enabled(client: Any, settings: Any, mode: str) -> None:
    settings.DCR = mode
    assert client.get(METADATA).json()["registration_endpoint"] == f"{settings.ISSUER}/oauth/register"
    settings.DCR = "off"
    assert "registration_endpoint" not in client.get(METADATA).json()


@pytest.mark.parametrize("method", ["get", "post", "put", "delete", "options"])
@pytest.mark.parametrize("path", [REGISTER, "/oauth/register/some-client"])
def test_off_is_the_uniform_404_for_every_method(client: Any, settings: Any, db: Any, method: str, path: str) -> None:
    settings.DCR = "off"
    before = counts()
    response = client.generic(method.upper(), path, json.dumps(GOOD), content_type="application/json")
    unknown = client.get("/no/such/page")
    assert response.status_code == 404 and response.content == unknown.content
    assert counts() == before


def test_the_endpoints_rotate_with_the_others(client: Any, dcr: Any, settings: Any) -> None:
    from authserver import endpoints

    settings.ENDPOINTS = "rotating"
    register = endpoints.path_of("register")
    assert register != REGISTER and post(client, GOOD).status_code == 404
    response = client.generic("POST", register, json.dumps(GOOD), content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["registration_client_uri"] == endpoints.url("register-client",
                                                                       client_id=response.json()["client_id"])


def test_the_machine_handler_serves_both_endpoints_like_the_full_stack(dcr: Any, monkeypatch: Any) -> None:
    from authserver import handlers
    from tests.bench.test_machine_handler import VOLATILE, wsgi_call

    monkeypatch.delenv("AUTHSERVER_BENCH_BASELINE", raising=False)
    app = handlers.Dispatcher()
    lean_stack, routed = app.machine, []
    app.machine = lambda environ, start: (routed.append(environ["PATH_INFO"]), lean_stack(environ, start))[1]
    for path in (REGISTER, "/oauth/register/some-client"):
        lean = wsgi_call(app, path, "{}", method="GET", HTTP_ACCEPT="text/html")
        full = wsgi_call(app.full, path, "{}", method="GET", HTTP_ACCEPT="text/html")
        assert lean[0] == full[0] and lean[0] in {401, 405} and lean[2] == full[2], path
        assert routed[-1] == path  # the lean handler answered
        assert {k: v for k, v in lean[1].items() if k not in VOLATILE} == {
            k: v for k, v in full[1].items() if k not in VOLATILE}
    dcr.DCR = "off"
    unknown = wsgi_call(app, "/no/such/page", method="GET")
    for path in (REGISTER, "/oauth/register/some-client"):
        assert wsgi_call(app, path, json.dumps(GOOD), CONTENT_TYPE="application/json")[2] == unknown[2]
