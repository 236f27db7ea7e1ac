"""``accounts/device`` (RFC 8628 §3.3): sign-in, the code, the consent screen, Allow / Deny, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from authserver.audit.models import AuditEvent
from authserver.oauth.device.models import DeviceAuthorization
from tests.factories import RS_AUDIENCE, UserFactory, make_client
from tests.oauth.device.flow import PAGE_URL, approve, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def device_client(db):
    return make_client(name="Terminal agent", client_type="public", grant_types=["device_code"], scopes=["ai.infer"])[0]


@pytest.fixture
def browser(user):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(user)
    return http


@pytest.fixture
def started(client, device_client):
    return start(client, device_client, scope="ai.infer").json()


def _csrf(http):
    http.get(PAGE_URL)
    return http.cookies["csrftoken"].value


def _post(http, **fields):
    return http.post(PAGE_URL, {"csrfmiddlewaretoken": _csrf(http), **fields})


def test_signed_out_visitors_are_sent_to_sign_in_and_back(client, started):
    response = client.get(f"{PAGE_URL}?user_code={started['user_code']}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/accounts/device")


def test_the_complete_uri_prefills_the_code_but_decides_nothing(browser, started):
    page = browser.get(f"{PAGE_URL}?user_code={started['user_code']}")
    assert page.status_code == 200
    assert f'value="{started["user_code"]}"' in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0")
    assert DeviceAuthorization.objects.get().status == "pending"


def test_a_malformed_prefill_is_not_echoed(browser):
    page = browser.get(f'{PAGE_URL}?user_code="><script>alert(1)</script>')
    assert page.status_code == 200 and "<script>alert" not in page.content.decode()


def test_entering_the_code_shows_the_app_its_apis_and_scopes(browser, started, device_client, resource_server):
    page = _post(browser, user_code=started["user_code"].lower().replace("-", ""))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Terminal agent" in html
    assert RS_AUDIENCE in html and "resource server" in html  # the API by its registered name
    assert "ai.infer" in html
    assert started["user_code"] in html  # shown back, so the person compares it with the device
    assert 'name="decision" value="allow"' in html and 'name="decision" value="deny"' in html
    assert DeviceAuthorization.objects.get().status == "pending"
    assert not AuditEvent.objects.filter(event__startswith="device.").exists()


@pytest.mark.parametrize(("decision", "status", "event"), [("allow", "authorized", "device.authorized"),
                                                            ("deny", "denied", "device.denied")])
def test_the_decision_is_recorded_and_audited(browser, started, user, device_client, decision, status, event):
    page = _post(browser, user_code=started["user_code"], decision=decision)
    assert page.status_code == 200 and 'id="device-result"' in page.content.decode()
    row = DeviceAuthorization.objects.get()
    assert (row.status, row.user_id) == (status, user.pk) and row.decided is not None
    audit = AuditEvent.objects.get(event=event)
    assert (audit.actor, audit.subject) == (f"user:{user.pk}", f"client:{device_client.client_id}")
    assert audit.details["scope"] == "ai.infer" and audit.details["device_code"].startswith("dvc_…")
    assert started["device_code"] not in str(audit.details) and started["user_code"] not in str(audit.details)


def _expire():
    DeviceAuthorization.objects.update(expires=timezone.now() - timedelta(seconds=1))


def _decide_first(http, started):
    approve(http, started["user_code"])


# Codes the page refuses, all with the same answer; nothing changes and nothing is audited.
BAD_CODES = [
    ("unknown", lambda http, s: "BCDF-GHJK"),
    ("malformed", lambda http, s: "not a code"),
    ("oversized", lambda http, s: "B" * 5000),
    ("expired", lambda http, s: (_expire(), s["user_code"])[1]),
]


@pytest.mark.parametrize(("case", "code"), BAD_CODES, ids=[b[0] for b in BAD_CODES])
@pytest.mark.parametrize("decision", ["", "allow"])
def test_bad_codes_are_refused_alike(browser, started, case, code, decision):
    fields = {"user_code": code(browser, started)}
    if decision:
        fields["decision"] = decision
    page = _post(browser, **fields)
    assert page.status_code == 400
    assert 'id="device-error"' in page.content.decode()
    assert DeviceAuthorization.objects.get().status == "pending"
    assert not AuditEvent.objects.filter(event__startswith="device.").exists()


def test_a_decided_code_cannot_be_decided_again(browser, started, user):
    assert _post(browser, user_code=started["user_code"], decision="deny").status_code == 200
    again = _post(browser, user_code=started["user_code"], decision="allow")
    assert again.status_code == 400
    assert DeviceAuthorization.objects.get().status == "denied"
    assert AuditEvent.objects.filter(event__startswith="device.").count() == 1


def test_without_csrf_token_nothing_is_decided(user, started):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(user)
    assert http.post(PAGE_URL, {"user_code": started["user_code"], "decision": "allow"}).status_code == 403
    assert DeviceAuthorization.objects.get().status == "pending"


def test_guessing_is_limited_per_user(browser, started, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "device.user": ("3/300", "closed")}
    answers = [_post(browser, user_code="BCDF-GHJK").status_code for _ in range(3)]
    assert answers == [400, 400, 400]
    refused = _post(browser, user_code=started["user_code"], decision="allow")
    assert refused.status_code == 429
    assert DeviceAuthorization.objects.get().status == "pending", "the right code after the limit does nothing"
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:device.user").count() == 1


def test_guessing_is_limited_per_network_across_users(started, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "device.user": ("3/300", "closed")}
    answers = []
    for n in range(4):  # a new account for every guess does not help: the network's budget is shared
        http = HttpClient()
        http.force_login(UserFactory(username=f"guesser{n}"))
        answers.append(http.post(PAGE_URL, {"user_code": "BCDF-GHJK"}).status_code)
    assert answers == [400, 400, 400, 429]
