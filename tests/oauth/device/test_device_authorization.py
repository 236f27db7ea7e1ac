"""``POST oauth/device`` (RFC 8628 §3.1-§3.2): who may ask, for what, and what comes back."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from authserver import credentials
from authserver.audit.models import AuditEvent
from authserver.oauth.device import user_codes
from authserver.oauth.device.models import DeviceAuthorization
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, make_client
from tests.oauth.device.flow import DEVICE_URL, FORM, start

pytestmark = pytest.mark.django_db


def test_public_client_gets_codes_once_and_only_digests_are_kept(client, device_client, settings):
    response = start(client, device_client, scope="ai.infer")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                         "expires_in", "interval"}
    assert credentials.is_well_formed(body["device_code"], "dvc")
    assert user_codes.normalise(body["user_code"]) is not None and body["user_code"][4] == "-"
    assert body["verification_uri"] == f"{settings.ISSUER}/accounts/device"
    assert body["verification_uri_complete"] == f"{settings.ISSUER}/accounts/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)
    row = DeviceAuthorization.objects.get()
    assert row.device_code == credentials.digest(body["device_code"])
    assert row.user_code_digest == user_codes.digest(user_codes.normalise(body["user_code"]) or "")
    assert body["user_code"].replace("-", "") not in str(row.__dict__)
    assert (row.scope, row.resource, row.status) == ("ai.infer", [RS_AUDIENCE], "pending")
    assert str(row).startswith("dvc_…") and body["device_code"] not in str(row)


def test_defaults_scopes_and_audiences_and_follows_configuration(client, device_client, settings):
    settings.DEVICE_CODE_SECONDS, settings.DEVICE_INTERVAL_SECONDS = 120, 9
    body = start(client, device_client).json()
    assert (body["expires_in"], body["interval"]) == (120, 9)
    row = DeviceAuthorization.objects.get()
    assert set(row.scope.split()) == {"ai.infer", "ai.admin"}
    assert row.interval == 9
    assert (row.expires - row.created).total_seconds() == 120


def test_confidential_client_authenticates_like_at_the_token_endpoint(client, confidential_device_client):
    app, secret = confidential_device_client
    ok = client.post(DEVICE_URL, urlencode({"scope": "ai.infer"}), content_type=FORM,
                     HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    assert ok.status_code == 200, ok.content
    assert DeviceAuthorization.objects.filter(client=app).count() == 1


def _not_for_device(**_: object) -> dict[str, object]:
    app, _secret = make_client(name="web", client_type="public", grant_types=["authorization_code"],
                               redirect_uris=["http://127.0.0.1/cb"], scopes=["ai.infer"])
    return {"data": {"client_id": app.client_id}}


def _confidential(secret: str | None) -> dict[str, object]:
    app, real = make_client(name="robot", grant_types=["device_code"], scopes=["ai.infer"])
    # The real secret with its last character changed (to one it is not: "x" itself ends 1 in 62 secrets).
    wrong = str(real)[:-1] + ("y" if str(real).endswith("x") else "x")
    headers = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, secret if secret is not None else wrong)}
    return {"data": {"scope": "ai.infer"}, "headers": headers} if secret != "" else {"data": {"client_id": app.client_id}}


# Each bad request: how it is built, then the status and error. Nothing is created for any of them.
REFUSALS = [
    ("unknown client", lambda c: {"data": {"client_id": "nobody"}}, 401, "invalid_client"),
    ("no client at all", lambda c: {"data": {}}, 400, "invalid_request"),
    ("confidential without its secret", lambda c: _confidential(""), 401, "invalid_client"),
    ("confidential with a wrong secret", lambda c: _confidential(None), 401, "invalid_client"),
    ("client not registered for the grant", lambda c: _not_for_device(), 400, "unauthorized_client"),
    ("scope it may not have", lambda c: {"data": {"client_id": c.client_id, "scope": "ai.infer root"}},
     400, "invalid_scope"),
    ("resource it is not registered for", lambda c: {"data": {"client_id": c.client_id,
                                                               "resource": "https://evil.example"}},
     400, "invalid_target"),
    ("one good and one bad resource", lambda c: {"data": {"client_id": c.client_id,
                                                           "resource": [RS_AUDIENCE, "https://evil.example"]}},
     400, "invalid_target"),
    ("duplicate client_id", lambda c: {"data": {"client_id": [c.client_id, c.client_id]}}, 400, "invalid_request"),
    ("parameters in the URL", lambda c: {"data": {}, "query": f"?client_id={c.client_id}"}, 400, "invalid_request"),
    ("not a form", lambda c: {"data": {"client_id": c.client_id}, "content_type": "application/json"},
     400, "invalid_request"),
]


@pytest.mark.parametrize(("case", "build", "status", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_and_nothing_created(client, device_client, case, build, status, error):
    spec = build(device_client)
    content_type = spec.get("content_type", FORM)
    body = urlencode(spec["data"], doseq=True) if content_type == FORM else '{"client_id": "x"}'
    response = client.post(DEVICE_URL + spec.get("query", ""), body, content_type=content_type,
                           **spec.get("headers", {}))
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    if status == 401:
        assert response["WWW-Authenticate"] == 'Basic realm="oauth"'
    assert DeviceAuthorization.objects.count() == 0
    # No authorization exists, so nobody decided anything; and no token was issued.
    assert not AuditEvent.objects.filter(event__in=["device.authorized", "device.denied", "token.issued"]).exists()


def test_get_is_405(client):
    assert client.get(DEVICE_URL).status_code == 405


def test_limited_per_network(client, device_client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "device.ip": ("2/60", "local")}
    assert [start(client, device_client).status_code for _ in range(3)] == [200, 200, 429]
    assert DeviceAuthorization.objects.count() == 2, "a limited request creates nothing"
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:device.ip").count() == 1


def test_failed_client_authentication_counts_against_the_failure_budget(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.auth_failure.ip": ("2/300", "local")}
    app, _ = make_client(name="robot", grant_types=["device_code"], scopes=["ai.infer"])
    wrong = basic_auth(app.client_id, credentials.mint("cs"))
    answers = [client.post(DEVICE_URL, "scope=ai.infer", content_type=FORM, HTTP_AUTHORIZATION=wrong).status_code
               for _ in range(4)]
    assert answers[:2] == [401, 401] and 429 in answers[2:]
