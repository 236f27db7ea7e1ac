"""The staff plane's own pages carry the Content-Security-Policy too (issue 13, item 6): the password
step, the forced password change, enrolment with its QR code, the second-factor page, the Security
page and the passkey pages, each at the stage that renders it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authserver.staff.models import PasswordChangeRequired, TOTPDevice
from tests.helpers import staff_login
from tests.security.test_csp import assert_policy
from tests.staff.helpers import url

pytestmark = pytest.mark.django_db

User = get_user_model()


def _page(http: Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200, (path, response.status_code, response.get("Location"))
    assert_policy(response, path)


def test_the_password_step_and_its_refusal_pages_have_the_policy(settings):
    _page(Client(), url("login/"))
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login.account": ("1/300", "closed")}
    http = Client()
    for _ in range(2):
        refused = http.post(url("login/"), {"username": "nobody", "password": "wrong"})
    assert refused.status_code == 429
    assert_policy(refused, "the 429 page")


def test_the_stages_before_the_admin_have_the_policy():
    staff = User.objects.create_superuser("first", "first@example.test", "x-unused-password-x")
    PasswordChangeRequired.objects.create(user=staff)
    http = Client()
    http.force_login(staff)
    _page(http, url("password/"))
    PasswordChangeRequired.objects.all().delete()
    enrol = http.get(url("enrol/"))
    assert_policy(enrol, "enrol")
    assert b"<svg" in enrol.content and b"style=" not in enrol.content  # the QR code needs no inline style
    _page(http, url("passkeys/enrol/"))
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    _page(http, url("verify/"))
    _page(http, url("passkeys/verify/"))


def test_the_security_pages_have_the_policy():
    http = staff_login(Client(), User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    for path in ("", "passkeys/", "passkeys/enrol/"):
        _page(http, url(path))
