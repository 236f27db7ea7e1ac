"""Webhook secrets: format, stored encrypted, never logged in clear; the webhook URL rule."""

from __future__ import annotations

import base64
import logging

import pytest
from django.db import connection

from authserver.logging import redact
from clients.models import webhook_url_refusal
from clients.webhooks.models import WebhookSecret
from clients.webhooks.services import WebhookError, webhook_secret_rotate
from tests.factories import make_client


@pytest.mark.django_db
def test_secret_format_and_encrypted_at_rest():
    client, _ = make_client()
    row, whsec = webhook_secret_rotate(client=client, actor="test")
    assert whsec.startswith("whsec_") and len(base64.b64decode(whsec.removeprefix("whsec_"))) == 32
    assert row.hint == "whsec_…" + whsec.rstrip("=")[-4:] and str(row) == f"webhook secret {row.hint}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhooksecret")
        (stored,) = cursor.fetchone()
    assert stored.startswith("v") and whsec.removeprefix("whsec_")[:20] not in stored
    assert WebhookSecret.objects.get(pk=row.pk).secret == whsec  # recoverable to sign
    with pytest.raises(WebhookError):
        webhook_secret_rotate(client=client, overlap=__import__("datetime").timedelta(days=31))


def test_webhook_secrets_are_redacted_from_logs(caplog):
    whsec = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert whsec not in redact(f"oops {whsec} leaked") and "whsec_[REDACTED]" in redact(whsec)
    with caplog.at_level(logging.INFO):
        logging.getLogger("authserver.test").info("value %s", whsec, extra={"x": whsec})
    assert whsec.removeprefix("whsec_")[:16] not in caplog.text


@pytest.mark.parametrize(("url", "override", "refusal"), [
    ("https://hooks.example.com/authserver", False, None),
    ("https://hooks.example.com:8443/a?b=c", False, None),
    ("http://hooks.example.com/a", False, "https"),
    ("http://hooks.example.com/a", True, "https"),  # the override is for loopback only
    ("http://127.0.0.1:9000/a", False, "https"),
    ("http://127.0.0.1:9000/a", True, None),
    ("http://[::1]:9000/a", True, None),
    ("http://localhost:9000/a", True, None),
    ("http://10.0.0.1/a", True, "https"),
    ("ftp://hooks.example.com/a", False, "https"),
    ("javascript:alert(1)", False, "absolute URL"),
    ("https://user:pw@hooks.example.com/", False, "without credentials"),
    ("https://hooks.example.com/#x", False, "fragment"),
    ("https://hooks.example.com/a b", False, "spaces"),
    ("https://hooks.example.com/\r\nX: y", False, "spaces"),
    ("https://hooks.example.com:99999/", False, "not a valid URL"),
    ("https:///nohost", False, "absolute URL"),
    ("https://hooks.example.com/" + "a" * 475, False, "at most 500"),
])
def test_webhook_url_rule(settings, url, override, refusal):
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = override
    found = webhook_url_refusal(url)
    assert (found is None) if refusal is None else (refusal in (found or ""))
