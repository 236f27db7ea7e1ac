"""The management API's key lifecycle: create, list, rotate, suspend, resume, revoke, revoke-all,
and the refusals of each (bad bodies, unknown keys, other methods)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authserver import credentials
from keys.models import ApiKey, CompromiseResponse
from keys.services import api_key_create
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import API, introspect
from tests.keys.conftest import KEYS, bearer, create_key, get, post

pytestmark = pytest.mark.django_db


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



def test_revoke_all_is_a_compromise_response(client, admin, owner, resource_server):
    app, token = admin
    rs, rs_secret = resource_server
    _, plaintext = api_key_create(client=owner, name="k")
    assert introspect(client, rs, rs_secret, plaintext).json()["active"] is True
    response = post(client, f"{API}clients/{owner.client_id}/revoke-all", token)
    assert response.status_code == 202, response.content
    body = response.json()
    record = CompromiseResponse.objects.get(pk=body["response_id"])
    assert record.client == owner and record.requested_by == f"api:{app.client_id}"
    assert body["client_id"] == owner.client_id and body["status"] in {"pending", "running", "done"}
    assert introspect(client, rs, rs_secret, plaintext).json() == {"active": False}
    assert get(client, KEYS, token).status_code == 200  # the admin's own token is unaffected


def test_revoke_all_of_unknown_client_is_404(client, admin):
    _, token = admin
    response = post(client, API + "clients/nobody/revoke-all", token)
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
