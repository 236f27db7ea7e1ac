"""Registration (WebAuthn §7.1): who may enrol a passkey, when, and what a forged attestation gets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from authserver.passkeys import services
from authserver.passkeys.models import PasskeyDevice
from authserver.staff.factor import SESSION_AT
from authserver.staff.models import TOTPDevice
from tests.helpers import staff_login
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import enrol, events, password_only, post_json, verified

pytestmark = pytest.mark.django_db


def test_first_enrolment_right_after_the_password_creates_the_device_and_passes_the_factor(staff, authenticator):
    http = password_only(staff)
    page = http.get(reverse("passkeys:enrol"))
    assert page.status_code == 200 and b'data-mode="enrol"' in page.content
    assert b"<script src=" in page.content and b"onclick" not in page.content

    response = enrol(http, authenticator)

    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == reverse("passkeys:list")
    device = PasskeyDevice.objects.get(user=staff)
    assert (device.confirmed, device.name, device.transports) == (True, "Laptop", ["internal"])
    assert device.public_key and device.sign_count == 0
    assert http.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert abs(http.session[SESSION_AT] - time.time()) < 5
    assert verified(http)
    [event] = events("passkey.enrolled")
    assert (event.actor, event.subject, event.details["fmt"]) == (f"user:{staff.pk}", f"passkey:{device.pk}", "none")


def test_the_options_ask_for_user_verification_a_resident_key_and_exclude_known_credentials(enrolled, staff):
    http = staff_login(HttpClient(), staff)
    options = post_json(http, "enrol-options").json()
    assert options["rp"]["id"] == "testserver"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert [c["id"] for c in options["excludeCredentials"]] == [enrolled.credential_id]
    # The user handle is opaque (§14.6.1): an HMAC of the user's id, not the id or the name.
    assert options["user"]["id"] == bytes_to_base64url(services.user_handle(staff))
    assert base64url_to_bytes(options["user"]["id"]) not in (str(staff.pk).encode(), staff.username.encode())


def test_a_second_passkey_needs_a_recent_second_factor(enrolled, staff):
    http = password_only(staff)  # has a passkey, not verified in this session
    page = http.get(reverse("passkeys:enrol"))
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("passkeys:verify") + "?next=")
    assert post_json(http, "enrol-options").status_code == 403
    assert post_json(http, "enrol-complete", {"credential": {}}).status_code == 403


def test_an_unverified_user_with_a_totp_device_cannot_enrol(staff, authenticator):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    http = password_only(staff)
    assert http.get(reverse("passkeys:enrol")).status_code == 302
    assert post_json(http, "enrol-options").status_code == 403
    assert not PasskeyDevice.objects.exists()


def test_a_stale_factor_is_not_recent_enough_to_add_a_passkey(enrolled, staff):
    http = staff_login(HttpClient(), staff)
    session = http.session
    session[SESSION_AT] = int(time.time()) - 301
    session.save()
    assert post_json(http, "enrol-options").status_code == 403


def test_a_recent_factor_adds_a_second_passkey(enrolled, staff):
    http = staff_login(HttpClient(), staff)
    assert enrol(http, SoftAuthenticator()).status_code == 200
    assert PasskeyDevice.objects.filter(user=staff).count() == 2


@pytest.mark.parametrize("who", ["anonymous", "not staff", "inactive"])
def test_only_an_authenticated_active_staff_user_reaches_enrolment(django_user_model, who):
    http = HttpClient()
    if who != "anonymous":
        user = django_user_model.objects.create_user("u", password="x-unused-password-x",
                                                     is_staff=who != "not staff")
        http.force_login(user)
        if who == "inactive":
            django_user_model.objects.filter(pk=user.pk).update(is_active=False)
    page = http.get(reverse("passkeys:enrol"))
    assert page.status_code == 302 and "passkeys" not in page["Location"].split("?")[0]
    for name in ("enrol-options", "enrol-complete"):
        assert post_json(http, name).status_code in (403, 302)
    assert not PasskeyDevice.objects.exists()


@pytest.mark.parametrize(("lie", "reason"), [
    ({"origin": "https://evil.example"}, "wrong_origin"),
    ({"origin": "http://testserver.evil.example"}, "wrong_origin"),
    ({"rp_id": "evil.example"}, "wrong_rp_id"),
    ({"uv": False}, "user_not_verified"),
])
def test_a_forged_attestation_enrols_nothing_and_is_audited(staff, authenticator, lie, reason):
    http = password_only(staff)
    response = enrol(http, authenticator, **lie)
    assert response.status_code == 400 and response.json() == {"error": "passkey_refused"}
    assert not PasskeyDevice.objects.exists()
    assert not verified(http)
    [event] = events("passkey.failed")
    assert (event.outcome, event.details["reason"], event.details["ceremony"]) == ("failure", reason, "register")


def test_a_registration_challenge_is_single_use(staff, authenticator):
    http = password_only(staff)
    options = post_json(http, "enrol-options").json()
    credential = authenticator.create(options)
    assert post_json(http, "enrol-complete", {"credential": credential}).status_code == 200
    # The same response again (after step-up would allow a second enrolment): the challenge is spent.
    session = http.session
    session[SESSION_AT] = int(time.time())
    session.save()
    assert post_json(http, "enrol-complete", {"credential": credential}).status_code == 400
    assert events("passkey.failed")[-1].details["reason"] == "no_challenge"
    assert PasskeyDevice.objects.count() == 1


def test_an_expired_registration_challenge_is_refused(staff, authenticator, monkeypatch):
    http = password_only(staff)
    options = post_json(http, "enrol-options").json()
    later = time.time() + services.CHALLENGE_SECONDS + 1
    monkeypatch.setattr(services.time, "time", lambda: later)
    assert post_json(http, "enrol-complete", {"credential": authenticator.create(options)}).status_code == 400
    assert events("passkey.failed")[-1].details["reason"] == "challenge_expired"


def test_a_credential_enrolled_by_one_account_cannot_be_enrolled_by_another(enrolled, other_staff, authenticator):
    response = enrol(password_only(other_staff), authenticator)  # same credential id
    assert response.status_code == 400
    assert events("passkey.failed")[-1].details["reason"] == "duplicate_credential"
    assert not PasskeyDevice.objects.filter(user=other_staff).exists()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"credential": "x"}', b'{"credential": {}}',
                                  b'{"credential": {"id": 1}}', b"{" + b" " * 20000 + b"}"])
def test_malformed_bodies_are_refused(staff, body: Any):
    http = password_only(staff)
    post_json(http, "enrol-options")
    response = http.post(reverse("passkeys:enrol-complete"), body, content_type="application/json")
    assert response.status_code == 400
    assert not PasskeyDevice.objects.exists()
