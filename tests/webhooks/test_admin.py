"""The admin: webhook URL and contact e-mail on the client forms, the secret shown once, rotation,
and the read-only delivery log with "retry now". Logged in with a second factor (staff_login)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import reverse
from standardwebhooks import Webhook

from authserver.audit.models import AuditEvent
from clients.models import Client
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from clients.webhooks.services import webhook_send
from tests.factories import REDIRECT_URI, make_client
from tests.helpers import staff_login
from tests.webhooks.receiver import deliver_due

pytestmark = pytest.mark.django_db
User = get_user_model()
WHSEC = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')


@pytest.fixture
def admin_http() -> HttpClient:
    http = HttpClient()
    staff_login(http, User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def change_data(client: Client, **overrides: Any) -> dict[str, Any]:
    data = {"name": client.name, "grant_types": ["authorization_code"], "redirect_uris": REDIRECT_URI,
            "allowed_audiences": "", "audience": "", "webhook_url": "", "contact_email": "",
            "retired_secrets-TOTAL_FORMS": "0", "retired_secrets-INITIAL_FORMS": "0"}
    return {**data, **overrides}


def test_add_form_takes_webhook_url_and_contact_and_shows_both_secrets_once(admin_http, hook_receiver):
    response = admin_http.post(url("clients_client_add"), {
        "name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "redirect_uris": "",
        "allowed_audiences": "", "resource_server_audience": "", "access_token_lifetime": "",
        "webhook_url": hook_receiver.url, "contact_email": "ops@customer.example", "_once": "t1"})
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    page = response.content.decode()
    (whsec,) = WHSEC.findall(page)
    client = Client.objects.get(name="svc")
    assert (client.webhook_url, client.contact_email) == (hook_receiver.url, "ops@customer.example")
    webhook_send(client=client, event_type="t", data={})
    deliver_due()
    assert Webhook(whsec).verify(hook_receiver.received[0]["body"], hook_receiver.received[0]["headers"])
    # The change page shows only the hint, never the secret.
    change = admin_http.get(url("clients_client_change", client.pk)).content.decode()
    assert whsec not in change and WebhookSecret.objects.get(client=client).hint in change


@pytest.mark.parametrize(("field", "value", "message"), [
    ("webhook_url", "http://hooks.example.com/x", "https"),
    ("webhook_url", "https://u:p@hooks.example.com/x", "without credentials"),
    ("webhook_url", "https://hooks.example.com/" + "a" * 500, "at most 500"),
    ("contact_email", "nope", "valid email"),
])
def test_change_form_validates_notification_fields(admin_http, field, value, message):
    client, _ = make_client(grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI])
    response = admin_http.post(url("clients_client_change", client.pk), change_data(client, **{field: value}))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    client.refresh_from_db()
    assert (client.webhook_url, client.contact_email) == ("", "")
    assert not WebhookSecret.objects.exists()


def test_change_form_sets_url_once_shows_secret_then_rotation(admin_http, hook_receiver):
    client, _ = make_client(grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI])
    response = admin_http.post(url("clients_client_change", client.pk),
                               change_data(client, webhook_url=hook_receiver.url, contact_email="a@b.example"))
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    (first,) = WHSEC.findall(response.content.decode())
    client.refresh_from_db()
    assert (client.webhook_url, client.contact_email) == (hook_receiver.url, "a@b.example")
    # Saving again: no new secret, the usual redirect.
    again = admin_http.post(url("clients_client_change", client.pk),
                            change_data(client, webhook_url=hook_receiver.url, contact_email="a@b.example"))
    assert again.status_code == 302 and WebhookSecret.objects.filter(client=client).count() == 1

    rotate_url = url("clients_client_rotate_webhook_secret", client.pk)
    assert b"Rotate webhook secret" in admin_http.get(url("clients_client_change", client.pk)).content
    assert admin_http.get(rotate_url).status_code == 200
    rotated = admin_http.post(rotate_url, {"overlap_hours": "24", "_once": "r1"})
    assert rotated["Cache-Control"].startswith("no-store")
    (second,) = WHSEC.findall(rotated.content.decode())
    assert second != first and b"previous-webhook-secrets" in rotated.content
    resubmitted = admin_http.post(rotate_url, {"overlap_hours": "24", "_once": "r1"})
    assert resubmitted.status_code == 302 and WebhookSecret.objects.filter(client=client).count() == 2

    webhook_send(client=client, event_type="t", data={})
    deliver_due()
    hook = hook_receiver.received[0]
    assert Webhook(first).verify(hook["body"], hook["headers"]) is not None
    assert Webhook(second).verify(hook["body"], hook["headers"]) is not None
    assert AuditEvent.objects.filter(event="webhook.secret_rotated", subject=f"client:{client.client_id}").exists()


def test_delivery_log_is_read_only_filterable_and_retries_now(admin_http, hook_receiver):
    client, _ = make_client(name="customer")
    client.webhook_url = hook_receiver.url
    client.save(update_fields=["webhook_url"])
    failed = webhook_send(client=client, event_type="api_key.expiring", data={})
    deliver_due()  # no secret yet: failed, nothing sent
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED and hook_receiver.received == []

    changelist = url("webhooks_webhookdelivery_changelist")
    page = admin_http.get(changelist, {"status__exact": "failed", "client__id__exact": client.pk})
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert "api_key.expiring" in page.content.decode()
    assert admin_http.get(changelist, {"status__exact": "delivered"}).context["cl"].result_count == 0
    detail = admin_http.get(url("webhooks_webhookdelivery_change", failed.pk))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert admin_http.get(url("webhooks_webhookdelivery_add")).status_code == 403

    from clients.webhooks.services import webhook_secret_rotate

    _, whsec = webhook_secret_rotate(client=client, actor="test")
    response = admin_http.post(changelist, {"action": "retry_now", "_selected_action": [str(failed.pk)]})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING
    (done,) = deliver_due()
    assert done.status == DeliveryStatus.DELIVERED and done.attempts == 2
    assert Webhook(whsec).verify(hook_receiver.received[0]["body"], hook_receiver.received[0]["headers"])
    assert AuditEvent.objects.filter(event="webhook.delivery_retried").count() == 1


def test_retry_needs_the_change_permission(hook_receiver):
    client, _ = make_client(name="customer")
    delivery = WebhookDelivery.objects.create(msg_id="msg_x", client=client, event_type="t", payload={},
                                              status=DeliveryStatus.FAILED)
    viewer = User.objects.create_user("viewer", password="x-unused-password-x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_webhookdelivery"))
    http = HttpClient()
    staff_login(http, viewer)
    changelist = url("webhooks_webhookdelivery_changelist")
    assert http.get(changelist).status_code == 200
    assert http.post(changelist, {"action": "retry_now", "_selected_action": [str(delivery.pk)]}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
