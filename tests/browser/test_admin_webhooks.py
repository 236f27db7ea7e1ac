"""The client admin in a real browser: webhook URL and contact set, the whsec_ secret shown once
and verified by the standardwebhooks library, rotation with overlap, the delivery log."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from standardwebhooks import Webhook

from clients.models import Client
from clients.services import client_register
from clients.webhooks.services import webhook_send
from tests.browser.conftest import admin_login, screenshot
from tests.webhooks.receiver import deliver_due, receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def test_webhook_secret_shown_once_rotated_and_logged(page: Any, live_server: Any, superuser: Any,
                                                      settings: Any) -> None:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    client, _ = client_register(name="Customer API", client_type="confidential", grant_types=["client_credentials"])
    admin_login(page, superuser)
    with receiver() as hooks:
        page.goto(admin_url(f"clients/client/{client.pk}/change/"))
        page.fill("#id_webhook_url", "http://hooks.example.com/x")
        page.fill("#id_contact_email", "ops@customer.example")
        page.click("input[name=_save]")
        assert "https" in page.inner_text(".field-webhook_url .errorlist")
        screenshot(page, "admin_client_webhook_url_refused")

        page.fill("#id_webhook_url", hooks.url)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("input[name=_save]")
        assert "no-store" in posted.value.headers["cache-control"]
        first = page.input_value("#webhook-secret")
        assert first.startswith("whsec_") and first not in page.url
        screenshot(page, "admin_webhook_secret_shown_once")
        client.refresh_from_db()
        assert (client.webhook_url, client.contact_email) == (hooks.url, "ops@customer.example")

        page.click("#to-client")
        page.wait_for_selector("#client_form")
        assert first not in page.content()
        assert "current" in page.inner_text(".field-webhook_signing")
        screenshot(page, "admin_client_notifications")

        page.click("text=Rotate webhook secret")
        page.wait_for_selector("#rotate-form")
        screenshot(page, "admin_rotate_webhook_secret")
        page.fill("#id_overlap_hours", "24")
        page.click("#rotate-submit")
        second = page.input_value("#webhook-secret")
        assert second.startswith("whsec_") and second != first
        assert page.locator("#previous-webhook-secrets").count() == 1
        screenshot(page, "admin_webhook_secret_rotated")

        webhook_send(client=Client.objects.get(pk=client.pk), event_type="api_key.expiring", data={"k": 1})
        deliver_due()
        (hook,) = hooks.received
        assert Webhook(first).verify(hook["body"], hook["headers"])  # during the overlap: both verify
        assert Webhook(second).verify(hook["body"], hook["headers"])

    page.goto(admin_url("webhooks/webhookdelivery/"))
    assert "api_key.expiring" in page.inner_text("#result_list")
    assert "delivered" in page.inner_text("#result_list").lower()
    screenshot(page, "admin_webhook_delivery_log")
