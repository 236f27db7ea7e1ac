"""Sensitive admin actions ask for the second factor again when the last one is stale: a GET goes to
re-verify and comes back; a POST is refused with no side effect (authserver.staff.stepup)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from authserver.staff import factor
from authserver.staff.models import TOTPDevice
from clients.models import Client
from tests.factories import make_client
from tests.helpers import staff_login
from tests.staff.helpers import admin, fresh_code, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def stale(client, settings):
    settings.STAFF_STEP_UP_SECONDS = 300
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x")
    staff_login(client, staff)
    session = client.session
    session[factor.SESSION_AT] = int(time.time()) - 301
    session.save()
    return client


def test_a_stale_factor_refuses_secret_rotation_without_side_effect(stale):
    app, _secret = make_client(name="svc", scopes=["ai.infer"])
    before = Client.objects.get(pk=app.pk).client_secret
    path = admin(f"clients/client/{app.pk}/rotate-secret/")
    response = stale.post(path, {"grace_hours": "0"})
    assert response.status_code == 302 and response["Location"].startswith(url("verify/"))
    assert Client.objects.get(pk=app.pk).client_secret == before
    assert stale.get(admin()).status_code == 200, "the admin itself stays open: only the action is stepped up"


def test_a_stale_factor_sends_the_add_page_through_reverify_and_back(stale):
    path = admin("clients/client/add/")
    response = stale.get(path)
    assert response["Location"].startswith(url("verify/")) and "step_up=1" in response["Location"]
    device = TOTPDevice.objects.get()
    back = stale.post(response["Location"], {"code": fresh_code(device)})
    assert back["Location"] == path
    assert stale.get(path).status_code == 200


@pytest.mark.parametrize("model", ["accesstoken", "refreshtoken", "grant"])
def test_a_stale_factor_refuses_bulk_token_revocation(stale, model):
    from authserver.audit.models import AuditEvent

    before = AuditEvent.objects.count()
    response = stale.post(admin(f"oauth/{model}/"), {"action": "revoke_selected", "_selected_action": ["1"]})
    assert response.status_code == 302 and response["Location"].startswith(url("verify/"))
    assert AuditEvent.objects.count() == before


def test_a_fresh_factor_goes_straight_through(client):
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x")
    staff_login(client, staff)
    assert client.get(admin("clients/client/add/")).status_code == 200


def test_factor_admin_shows_no_key_adds_nothing_and_removes_with_step_up(stale):
    device = TOTPDevice.objects.get()
    page = stale.get(admin(f"staff/totpdevice/{device.pk}/change/"))
    assert page.status_code == 200 and device.key.encode() not in page.content
    assert stale.get(admin("staff/totpdevice/add/")).status_code == 403
    response = stale.post(admin(f"staff/totpdevice/{device.pk}/delete/"), {"post": "yes"})
    assert response["Location"].startswith(url("verify/"))
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_stale_factor_refuses_webhook_secret_rotation_and_a_new_webhook_url(stale):
    from clients.webhooks.models import WebhookSecret

    app, _secret = make_client(name="hooked", scopes=["ai.infer"])
    response = stale.post(admin(f"clients/client/{app.pk}/rotate-webhook-secret/"), {"overlap_hours": "0"})
    assert response.status_code == 302 and response["Location"].startswith(url("verify/"))
    change = admin(f"clients/client/{app.pk}/change/")
    form = stale.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and not isinstance(value, list)}
    response = stale.post(change, {**data, "webhook_url": "https://hooks.example.test/in"})
    assert response.status_code == 302 and response["Location"].startswith(url("verify/"))
    app.refresh_from_db()
    assert app.webhook_url == "" and not WebhookSecret.objects.filter(client=app).exists()
