"""Staff passkeys in Chromium with its virtual authenticator (CDP ``WebAuthn`` domain).

A passkey is enrolled in one browser context; the credential (private key included) is carried to
an authenticator in a fresh context, which signs in through the staff pages: the password step,
then "Use a passkey instead" on the second-factor page. Enrolment starts from a session made for
the user (force_login's equivalent): the first enrolment right after the password.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from authserver.audit.models import AuditEvent
from authserver.passkeys.models import PasskeyDevice
from authserver.staff.factor import SESSION_AT
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

User = get_user_model()
SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


def password_step(context: Any, live_server: Any, user: Any) -> str:
    """A logged-in session without a second factor, as the browser's cookie; returns its key."""
    http = HttpClient()
    http.force_login(user)
    key = http.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": live_server.url}])
    return key


def session_cookie(context: Any) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)


def virtual_authenticator(context: Any, page: Any, **options: Any) -> tuple[Any, str]:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {**AUTHENTICATOR, **options}})
    return cdp, found["authenticatorId"]


def new_page(browser: Any, live_server: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.fixture
def staff(transactional_db: Any) -> Any:
    return User.objects.create_user("ops", "ops@example.test", "x-unused-password-x", is_staff=True,
                                    is_superuser=True)


def test_enrol_a_passkey_then_pass_the_second_factor_with_it(browser: Any, live_server: Any, staff: Any) -> None:
    # -- Enrolment, right after the password step.
    context, page = new_page(browser, live_server)
    try:
        password_step(context, live_server, staff)
        cdp, authenticator_id = virtual_authenticator(context, page)
        page.goto(reverse("passkeys:enrol"))
        assert page.locator("#passkey-ceremony[data-mode=enrol]").count() == 1
        screenshot(page, "passkeys-enrol")
        page.fill("#passkey-name", "Virtual authenticator")
        with page.expect_navigation(url=f"**{reverse('passkeys:list')}"):
            page.click("#passkey-start")
        screenshot(page, "passkeys-list")
        assert "Virtual authenticator" in page.locator("#passkey-list").inner_text()
        [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
        assert credential["isResidentCredential"] is True and credential["rpId"] == "localhost"
    finally:
        context.close()
    device = PasskeyDevice.objects.get(user=staff)
    assert device.name == "Virtual authenticator" and device.transports == ["internal"]
    assert AuditEvent.objects.filter(event="passkey.enrolled", subject=f"passkey:{device.pk}").count() == 1

    # -- A later login through the real pages: the admin sends to the password step, then to the
    # second-factor page, whose "Use a passkey instead" runs the passkey, carried to a new authenticator.
    context, page = new_page(browser, live_server)
    try:
        cdp, authenticator_id = virtual_authenticator(context, page)
        cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator_id, "credential": credential})
        target = f"/{settings.ADMIN_PATH}/"
        page.goto(target)
        page.wait_for_selector("#login-form")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "x-unused-password-x")
        page.click("#login-form input[type=submit]")
        page.wait_for_url("**/security/verify/**")
        password_only = session_cookie(context)
        assert SESSION_AT not in SessionStore(password_only).load()
        page.click("text=Use a passkey instead")
        page.wait_for_selector("#passkey-start")
        screenshot(page, "passkeys-verify")
        with page.expect_navigation(url=f"**{target}"):
            page.click("#passkey-start")
        page.wait_for_selector("#site-name")
        screenshot(page, "passkeys-verified-admin")
        session_key = session_cookie(context)
    finally:
        context.close()
    assert session_key != password_only, "the second factor gives the session a new key"
    session = SessionStore(session_key).load()
    assert session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert abs(session[SESSION_AT] - time.time()) < 60
    device.refresh_from_db()
    assert device.last_used_at is not None
    assert AuditEvent.objects.filter(event="passkey.passed", subject=f"passkey:{device.pk}").count() == 1


def test_an_authenticator_without_the_credential_does_not_pass(browser: Any, live_server: Any, staff: Any) -> None:
    context, page = new_page(browser, live_server)
    try:
        password_step(context, live_server, staff)
        virtual_authenticator(context, page)
        page.goto(reverse("passkeys:enrol"))
        with page.expect_navigation(url=f"**{reverse('passkeys:list')}"):
            page.click("#passkey-start")
    finally:
        context.close()

    context, page = new_page(browser, live_server)  # a new authenticator, empty: not this user's passkey
    try:
        session_key = password_step(context, live_server, staff)
        virtual_authenticator(context, page)
        page.goto(reverse("passkeys:verify"))
        page.click("#passkey-start")
        page.wait_for_selector("#passkey-ceremony[data-state=failed]")
        screenshot(page, "passkeys-verify-refused")
        assert "did not work" in page.locator("#passkey-status").inner_text()
    finally:
        context.close()
    assert SESSION_AT not in SessionStore(session_key).load()
