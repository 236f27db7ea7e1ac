"""serve's first-run admin has a one-time password that must be replaced; an operator's own password
(AUTHSERVER_ADMIN_PASSWORD, createsuperuser, changepassword) is not forced. And the CLI reset."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from authserver.audit.models import AuditEvent
from authserver.oauth.management.commands.serve import Command
from authserver.staff.models import PasswordChangeRequired, TOTPDevice

pytestmark = pytest.mark.django_db


def _first_run(monkeypatch, password: str | None) -> str | None:
    """The generated one-time password serve shows (once, in its summary), or None."""
    if password is None:
        monkeypatch.delenv("AUTHSERVER_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("AUTHSERVER_ADMIN_PASSWORD", password)
    out = io.StringIO()
    command = Command(stdout=out)
    generated = command._ensure_superuser()
    assert generated is None or generated not in out.getvalue()  # not printed yet: the summary shows it
    return generated


def test_the_generated_one_time_password_must_be_changed(monkeypatch, client):
    password = _first_run(monkeypatch, None)
    assert password
    admin = get_user_model().objects.get(username="admin")
    assert PasswordChangeRequired.objects.filter(user=admin).exists()
    from tests.staff.helpers import url

    response = client.post(url("login/"), {"username": "admin", "password": password})
    assert response["Location"].startswith(url("password/"))


def test_an_operator_chosen_password_is_not_forced(monkeypatch):
    _first_run(monkeypatch, "an-operator-chosen-passphrase-9")
    assert not PasswordChangeRequired.objects.exists()
    get_user_model().objects.create_superuser("ops", "", "another-operator-passphrase-3")
    assert not PasswordChangeRequired.objects.exists()


def test_reset_factors_command(monkeypatch):
    staff = get_user_model().objects.create_superuser("root", "", "x-unused-password-x")
    TOTPDevice.objects.create(user=staff, name="lost phone", confirmed=True)
    out = io.StringIO()
    call_command("staff", "reset-factors", "root", stdout=out)
    assert json.loads(out.getvalue()) == {"username": "root", "factors_removed": 1}
    assert not TOTPDevice.objects.exists()
    assert AuditEvent.objects.filter(event="staff.factor.removed", actor="cli").count() == 1
