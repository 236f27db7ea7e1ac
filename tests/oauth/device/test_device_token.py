"""The token endpoint's device grant (RFC 8628 §3.4-§3.5): pending, slow_down, denial, expiry,
single use, the right client only, refresh with rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from authserver import credentials, revocation
from authserver.audit.models import AuditEvent
from authserver.oauth.device.models import DeviceAuthorization
from authserver.oauth.models import AccessToken, RefreshToken
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import introspect, refresh
from tests.oauth.device.flow import GRANT, TOKEN_URL, approve, poll, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user):
    http = HttpClient()
    http.force_login(user)
    return http


def _started(client, app, **extra):
    body = start(client, app, **extra).json()
    return body["device_code"], body["user_code"]


def _rewind_last_poll(seconds: float = 60) -> None:
    """As if the device had waited its interval since its last poll."""
    DeviceAuthorization.objects.update(last_polled=timezone.now() - timedelta(seconds=seconds))


def test_complete_flow_tokens_carry_the_user_scopes_and_audience(client, browser, device_client, user,
                                                                  resource_server):
    rs, rs_secret = resource_server
    device_code, user_code = _started(client, device_client, scope="ai.infer", resource=RS_AUDIENCE)
    pending = poll(client, device_client, device_code)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    assert approve(browser, user_code).status_code == 200
    _rewind_last_poll()
    issued = poll(client, device_client, device_code)
    assert issued.status_code == 200, issued.content
    assert issued["Cache-Control"] == "no-store"
    body = issued.json()
    assert credentials.is_well_formed(body["access_token"], "at")
    assert credentials.is_well_formed(body["refresh_token"], "rt")
    assert body["scope"] == "ai.infer"
    answer = introspect(client, rs, rs_secret, body["access_token"]).json()
    assert answer["active"] is True
    assert (answer["sub"], answer["client_id"], answer["aud"]) == (str(user.pk), device_client.client_id, [RS_AUDIENCE])
    event = AuditEvent.objects.get(event="token.issued")
    assert event.details["grant_type"] == GRANT and event.subject == f"user:{user.pk}"
    # One family: the refresh token rotates as usual, and the old access token stops working.
    rotated = refresh(client, device_client, None, body["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    assert introspect(client, rs, rs_secret, body["access_token"]).json() == {"active": False}
    family = DeviceAuthorization.objects.get().token_family
    assert family is not None and RefreshToken.objects.filter(token_family=family).count() == 2


def test_a_device_code_is_redeemed_once(client, browser, device_client):
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code)
    assert poll(client, device_client, device_code).status_code == 200
    _rewind_last_poll()
    replay = poll(client, device_client, device_code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 1


def test_polling_faster_than_the_interval_is_slow_down_and_adds_five_seconds(client, device_client):
    device_code, _ = _started(client, device_client)
    assert poll(client, device_client, device_code).json()["error"] == "authorization_pending"
    fast = poll(client, device_client, device_code)
    assert fast.status_code == 400 and fast.json()["error"] == "slow_down"
    assert DeviceAuthorization.objects.get().interval == 10  # §3.5: +5 s for this and all later requests
    _rewind_last_poll(7)  # waited the old interval (5 s), not the new one (10 s)
    assert poll(client, device_client, device_code).json()["error"] == "slow_down"
    assert DeviceAuthorization.objects.get().interval == 15
    _rewind_last_poll(15)
    assert poll(client, device_client, device_code).json()["error"] == "authorization_pending"
    assert DeviceAuthorization.objects.get().interval == 15


def test_denied_is_access_denied_and_stays_so(client, browser, device_client, user):
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code, "deny")
    for _ in range(2):
        _rewind_last_poll()
        denied = poll(client, device_client, device_code)
        assert denied.status_code == 400 and denied.json()["error"] == "access_denied"
    assert AccessToken.objects.count() == 0
    assert AuditEvent.objects.get(event="device.denied").actor == f"user:{user.pk}"


@pytest.mark.parametrize("approved", [False, True], ids=["pending", "approved"])
def test_expired_is_expired_token_even_if_approved(client, browser, device_client, approved):
    device_code, user_code = _started(client, device_client)
    if approved:
        approve(browser, user_code)
    DeviceAuthorization.objects.update(expires=timezone.now() - timedelta(seconds=1))
    expired = poll(client, device_client, device_code)
    assert expired.status_code == 400 and expired.json()["error"] == "expired_token"
    assert AccessToken.objects.count() == 0


def test_another_clients_device_code_is_invalid_grant_and_left_alone(client, browser, device_client):
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code)
    thief, _ = make_client(name="other device app", client_type="public", grant_types=["device_code"])
    stolen = poll(client, thief, device_code)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 0
    assert poll(client, device_client, device_code).status_code == 200, "the rightful client still redeems it"


def _code(client, app):
    return _started(client, app)[0]


# Bad token requests: (id, the request's fields given the started code, status, error).
BAD_POLLS = [
    ("malformed device code", lambda c, code: {"device_code": "dvc_nope"}, 400, "invalid_grant"),
    ("another type of credential", lambda c, code: {"device_code": credentials.mint("ac")}, 400, "invalid_grant"),
    ("unknown well-formed code", lambda c, code: {"device_code": credentials.mint("dvc")}, 400, "invalid_grant"),
    ("missing device code", lambda c, code: {"device_code": ""}, 400, "invalid_request"),
    ("unknown client", lambda c, code: {"device_code": code, "client_id": "nobody"}, 401, "invalid_client"),
]


@pytest.mark.parametrize(("case", "fields", "status", "error"), BAD_POLLS, ids=[b[0] for b in BAD_POLLS])
def test_bad_polls_issue_nothing(client, browser, device_client, case, fields, status, error):
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code)
    response = client.post(TOKEN_URL, {"grant_type": GRANT, "client_id": device_client.client_id,
                                       **fields(device_client, device_code)})
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert AccessToken.objects.count() == 0
    assert not AuditEvent.objects.filter(event="token.issued").exists()
    assert DeviceAuthorization.objects.get().redeemed is None


def test_client_not_registered_for_the_grant_is_unauthorized(client, browser, web_client, device_client):
    app, secret = web_client
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code)
    response = client.post(TOKEN_URL, {"grant_type": GRANT, "device_code": device_code},
                           HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    assert AccessToken.objects.count() == 0


def test_confidential_device_client_must_authenticate_when_polling(client, browser, confidential_device_client):
    app, secret = confidential_device_client
    body = client.post("/oauth/device", "scope=ai.infer", content_type="application/x-www-form-urlencoded",
                       HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)).json()
    approve(browser, body["user_code"])
    anonymous = poll(client, app, body["device_code"])
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    assert AccessToken.objects.count() == 0
    ok = client.post(TOKEN_URL, {"grant_type": GRANT, "device_code": body["device_code"]},
                     HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    assert ok.status_code == 200, ok.content


def test_compromise_response_cuts_off_pending_device_codes(client, browser, device_client):
    device_code, user_code = _started(client, device_client)
    approve(browser, user_code)
    type(device_client).objects.filter(pk=device_client.pk).update(credentials_revoked_at=timezone.now())
    revocation.invalidate(settle=True, events=())
    assert poll(client, device_client, device_code).json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 0
