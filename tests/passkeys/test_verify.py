"""Authentication (WebAuthn §7.2) as the staff second factor, and the attacks it must refuse."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from authserver import counters
from authserver.passkeys import services
from authserver.passkeys.models import PasskeyDevice
from authserver.staff.factor import SESSION_AT
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import enrol, events, password_only, post_json, verified, verify

pytestmark = pytest.mark.django_db


def assert_refused(http: HttpClient, response, reason: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json() == {"error": "passkey_refused"}
    assert SESSION_AT not in http.session and DEVICE_ID_SESSION_KEY not in http.session
    assert not verified(http)
    assert events("passkey.failed")[-1].details["reason"] == reason


def test_a_passkey_passes_the_second_factor_and_returns_to_next(enrolled, staff, authenticator):
    http = password_only(staff)
    page = http.get(reverse("passkeys:verify"), {"next": f"/{settings.ADMIN_PATH}/clients/"})
    assert page.status_code == 200 and b'data-mode="verify"' in page.content
    assert not verified(http)

    response = verify(http, authenticator, next_url=f"/{settings.ADMIN_PATH}/clients/")

    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == f"/{settings.ADMIN_PATH}/clients/"
    assert http.session[DEVICE_ID_SESSION_KEY] == enrolled.persistent_id
    assert abs(http.session[SESSION_AT] - time.time()) < 5
    assert verified(http)
    enrolled.refresh_from_db()
    assert enrolled.sign_count == 1 and enrolled.last_used_at is not None
    [event] = events("passkey.passed")
    assert (event.actor, event.subject) == (f"user:{staff.pk}", f"passkey:{enrolled.pk}")


def test_the_options_allow_only_the_users_own_credentials_and_require_user_verification(enrolled, staff,
                                                                                       other_staff):
    enrol(password_only(other_staff), SoftAuthenticator())
    options = post_json(password_only(staff), "verify-options").json()
    assert [c["id"] for c in options["allowCredentials"]] == [enrolled.credential_id]
    assert options["userVerification"] == "required" and options["rpId"] == "testserver"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "x"])
def test_next_never_leaves_the_site(enrolled, staff, authenticator, next_url):
    response = verify(password_only(staff), authenticator, next_url=next_url)
    assert response.json()["redirect"] == reverse("admin:index")


def test_a_replayed_assertion_is_refused(enrolled, staff, authenticator):
    http = password_only(staff)
    options = post_json(http, "verify-options").json()
    assertion = authenticator.get(options)
    assert post_json(http, "verify-complete", {"credential": assertion}).status_code == 200
    # Replayed on the same session (the challenge was spent) and on a fresh one (it never had it).
    replay = post_json(http, "verify-complete", {"credential": assertion})
    assert replay.status_code == 400 and events("passkey.failed")[-1].details["reason"] == "no_challenge"
    fresh = password_only(staff)
    assert_refused(fresh, post_json(fresh, "verify-complete", {"credential": assertion}), "no_challenge")
    assert len(events("passkey.passed")) == 1


def test_an_assertion_over_an_earlier_challenge_is_refused(enrolled, staff, authenticator):
    http = password_only(staff)
    old = post_json(http, "verify-options").json()
    post_json(http, "verify-options")  # a new ceremony voids the old challenge
    assert_refused(http, post_json(http, "verify-complete", {"credential": authenticator.get(old)}),
                   "wrong_challenge")


def test_a_challenge_issued_to_another_session_is_refused(enrolled, staff, authenticator):
    elsewhere = post_json(password_only(staff), "verify-options").json()
    http = password_only(staff)
    post_json(http, "verify-options")
    assert_refused(http, post_json(http, "verify-complete", {"credential": authenticator.get(elsewhere)}),
                   "wrong_challenge")


def test_an_expired_challenge_is_refused(enrolled, staff, authenticator, monkeypatch):
    http = password_only(staff)
    options = post_json(http, "verify-options").json()
    later = time.time() + services.CHALLENGE_SECONDS + 1
    monkeypatch.setattr(services.time, "time", lambda: later)
    assert_refused(http, post_json(http, "verify-complete", {"credential": authenticator.get(options)}),
                   "challenge_expired")


@pytest.mark.parametrize(("lie", "reason"), [
    ({"origin": "https://evil.example"}, "wrong_origin"),
    ({"origin": "https://testserver"}, "wrong_origin"),
    ({"rp_id": "evil.example"}, "wrong_rp_id"),
    ({"uv": False}, "user_not_verified"),
])
def test_a_forged_assertion_is_refused(enrolled, staff, authenticator, lie, reason):
    http = password_only(staff)
    assert_refused(http, verify(http, authenticator, **lie), reason)


def test_a_signature_by_another_key_is_refused(enrolled, staff, authenticator):
    impostor = SoftAuthenticator(credential_id=authenticator.credential_id)  # same id, different key
    http = password_only(staff)
    assert_refused(http, verify(http, impostor), "bad_signature")


def test_another_users_credential_does_not_pass_this_users_factor(enrolled, staff, other_staff):
    theirs = SoftAuthenticator()
    enrol(password_only(other_staff), theirs)
    http = password_only(staff)
    assert_refused(http, verify(http, theirs), "unknown_credential")


def test_a_sign_count_regression_is_refused_and_audited(enrolled, staff, authenticator):
    PasskeyDevice.objects.filter(pk=enrolled.pk).update(sign_count=10)
    http = password_only(staff)
    response = verify(http, authenticator, sign_count=5)
    assert response.status_code == 400
    assert not verified(http)
    [event] = events("passkey.sign_count_regressed")
    assert (event.outcome, event.subject) == ("failure", f"passkey:{enrolled.pk}")
    assert (event.details["stored"], event.details["presented"]) == (10, 5)
    enrolled.refresh_from_db()
    assert enrolled.sign_count == 10


def test_a_counter_that_stays_at_zero_is_accepted(enrolled, staff, authenticator):
    # Many passkey providers never count (§6.1.1): zero on both sides is not a regression.
    assert verify(password_only(staff), authenticator, sign_count=0).status_code == 200


def test_no_login_no_ceremony(enrolled, authenticator):
    http = HttpClient()
    page = http.get(reverse("passkeys:verify"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("staff:login"))
    assert post_json(http, "verify-options").status_code == 403
    assert post_json(http, "verify-complete", {"credential": {}}).status_code == 403
    assert not events("passkey.passed")


def test_a_user_who_is_not_staff_cannot_pass(enrolled, staff, authenticator):
    type(staff).objects.filter(pk=staff.pk).update(is_staff=False)
    http = password_only(staff)
    assert post_json(http, "verify-options").status_code == 403
    assert post_json(http, "verify-complete", {"credential": {}}).status_code == 403


def test_attempts_are_limited_per_account(enrolled, staff, authenticator, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "passkey.account": ("3/300", "closed")}
    http = password_only(staff)
    statuses = [post_json(http, "verify-complete", {"credential": {}}).status_code for _ in range(4)]
    # Every ceremony request of the account counts (the enrolment's two included): at most 3 in 5 minutes.
    assert statuses == [400, 429, 429, 429]
    assert len(events("passkey.failed")) == 1, "a refused attempt is not even looked at"
    # The right passkey, after the limit, is not even looked at: another session of the same account too.
    again = password_only(staff)
    assert post_json(again, "verify-options").status_code == 429
    assert not verified(again)


def test_attempts_fail_closed_when_the_limiter_store_is_down(enrolled, staff, authenticator, monkeypatch):
    def down(*args, **kwargs):
        raise counters.CountersUnavailable("store down")

    monkeypatch.setattr(counters.backend(), "consume", down)
    response = post_json(password_only(staff), "verify-options")
    assert response.status_code == 503
