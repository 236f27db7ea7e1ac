"""The staff plane in Chromium: the first-run admin's one-time password -> a new password -> TOTP
enrolment (QR code and key, codes computed as a phone would) -> recovery codes -> the admin; then a
TOTP login. Screenshots in tests/screenshots/staff-*.png."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_otp.oath import totp

from authserver.staff.services import staff_password_change_require
from tests.browser.conftest import screenshot, totp_code

pytestmark = pytest.mark.browser
ONE_TIME = "one-time-password-from-serve-1"
NEW = "my-own-passphrase-for-the-admin-7"


def _code_from_page(page: Any) -> str:
    """What the phone computes from the key shown on the enrolment page."""
    shown = page.locator("#totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(shown + "=" * (-len(shown) % 8))
    return f"{totp(key):06d}"


def test_first_run_password_change_enrolment_then_admin(page: Any, transactional_db: Any) -> None:
    user = get_user_model().objects.create_superuser("admin", "", ONE_TIME)
    staff_password_change_require(user=user)  # as serve does for its generated password

    page.goto(f"/{settings.ADMIN_PATH}/")
    assert "/security/login/" in page.url
    screenshot(page, "staff-1-login")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ONE_TIME)
    page.click("input[type=submit]")

    page.wait_for_selector("#password-form")
    assert "/security/password/" in page.url
    screenshot(page, "staff-2-forced-password-change")
    page.fill("#id_old_password", ONE_TIME)
    page.fill("#id_new_password1", NEW)
    page.fill("#id_new_password2", NEW)
    page.click("#password-form input[type=submit]")

    page.wait_for_selector("#enrol-form")
    assert page.locator("svg.segno").count() == 1
    screenshot(page, "staff-3-enrol-totp")
    page.fill("#id_code", _code_from_page(page))
    page.click("#enrol-form input[type=submit]")

    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    screenshot(page, "staff-4-recovery-codes")
    page.click("#continue")
    page.wait_for_selector("#site-name")
    assert page.locator("#user-tools").count() == 1
    screenshot(page, "staff-5-admin")

    user.refresh_from_db()
    assert user.check_password(NEW)


def test_totp_login(page: Any, superuser: Any) -> None:
    totp_code(superuser)  # an enrolled authenticator
    page.goto(f"/{settings.ADMIN_PATH}/clients/client/")
    page.fill("#id_username", superuser.get_username())
    from tests.browser.conftest import ADMIN_PASSWORD

    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#verify-form")
    page.fill("#id_code", "000000")
    page.click("#verify-form input[type=submit]")
    page.wait_for_selector(".errornote")
    screenshot(page, "staff-6-verify-wrong-code")
    page.wait_for_timeout(1100)  # django-otp's throttle after a failure
    page.fill("#id_code", totp_code(superuser))
    page.click("#verify-form input[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.url.endswith("/clients/client/"), "back where the session was going"
    screenshot(page, "staff-7-after-totp-login")
