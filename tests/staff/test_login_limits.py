"""The staff login has the same limits as /accounts/login/, before any password is checked, failing
closed, answered as pages (issue 13: 40 wrong admin passwords were all answered 200)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from authserver import counters
from authserver.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "staff-password-for-tests-1"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)


def login_url() -> str:
    return f"/{settings.ADMIN_PATH}/security/login/"


def test_twenty_wrong_admin_passwords_get_429_and_then_the_right_one_is_refused(client, staff):
    answers = [client.post(login_url(), {"username": "root", "password": f"wrong-{i}"}) for i in range(20)]
    statuses = [r.status_code for r in answers]
    assert statuses[:10] == [200] * 10  # login.account: 10 per 5 minutes, as /accounts/login/
    assert statuses[10:] == [429] * 10
    limited = answers[-1]
    assert limited["Content-Type"].startswith("text/html")  # a page, not raw JSON
    assert int(limited["Retry-After"]) >= 1
    assert b"Too many attempts" in limited.content
    right = client.post(login_url(), {"username": "root", "password": PASSWORD})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session, "the right password while limited does not log in"
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:login.account").count() == 1


def test_the_admins_own_login_url_is_the_staff_login(client, staff):
    response = client.get(f"/{settings.ADMIN_PATH}/login/?next=/{settings.ADMIN_PATH}/")
    assert response.status_code == 302
    assert response["Location"].startswith(login_url())
    # and Django's own login view never answers a POST there (no unlimited guessing through it)
    for i in range(12):
        client.post(f"/{settings.ADMIN_PATH}/login/", {"username": "root", "password": f"wrong-{i}"})
    assert "_auth_user_id" not in client.session


def test_limited_per_network_across_accounts(client, staff, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login.ip": ("3/300", "closed")}
    for i in range(3):
        assert client.post(login_url(), {"username": f"someone{i}", "password": "x"}).status_code == 200
    assert client.post(login_url(), {"username": "root", "password": PASSWORD}).status_code == 429
    assert "_auth_user_id" not in client.session


def test_store_down_is_a_503_page_never_a_login(client, staff, monkeypatch):
    def down(*args, **kwargs):
        raise counters.CountersUnavailable("store down")

    monkeypatch.setattr(counters.backend(), "consume", down)
    response = client.post(login_url(), {"username": "root", "password": PASSWORD})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "5"
    assert "_auth_user_id" not in client.session


def test_a_non_staff_account_is_refused_with_its_right_password(client, user):
    from tests.factories import PASSWORD as USER_PASSWORD

    response = client.post(login_url(), {"username": user.get_username(), "password": USER_PASSWORD})
    assert response.status_code == 200
    assert b"staff account" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(event="staff.login.refused").count() == 1
