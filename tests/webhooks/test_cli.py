"""``manage.py client create/update --webhook-url/--contact-email`` and ``client webhook-secret rotate``."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from authserver.audit.models import AuditEvent
from clients.models import Client
from clients.webhooks.models import WebhookSecret
from clients.webhooks.services import webhook_send
from tests.clients.test_cli import fail, run
from tests.webhooks.receiver import deliver_due

pytestmark = pytest.mark.django_db


def test_create_with_webhook_url_prints_the_secret_once_and_it_verifies(capsys, hook_receiver):
    out = run(capsys, "client", "create", "--name", "svc", "--type", "confidential", "--grant", "client_credentials",
              "--webhook-url", hook_receiver.url, "--contact-email", "ops@customer.example")
    assert out["webhook_url"] == hook_receiver.url and out["contact_email"] == "ops@customer.example"
    whsec = out["webhook_secret"]
    assert whsec.startswith("whsec_")
    client = Client.objects.get(client_id=out["client_id"])
    assert (client.webhook_url, client.contact_email) == (hook_receiver.url, "ops@customer.example")
    # Stored encrypted, not in clear.
    stored = WebhookSecret.objects.filter(client=client).values_list("secret", flat=True).get()
    assert whsec not in stored and whsec.removeprefix("whsec_") not in stored
    webhook_send(client=client, event_type="t", data={})
    deliver_due()
    assert Webhook(whsec).verify(hook_receiver.received[0]["body"], hook_receiver.received[0]["headers"])


def test_update_then_rotate_with_overlap(capsys, hook_receiver):
    out = run(capsys, "client", "create", "--name", "svc", "--type", "confidential", "--grant", "client_credentials")
    assert "webhook_secret" not in out and out["webhook_url"] == ""
    cid = out["client_id"]
    assert run(capsys, "client", "update", cid, "--contact-email", "a@b.example") == {
        "client_id": cid, "webhook_url": "", "contact_email": "a@b.example"}
    first = run(capsys, "client", "update", cid, "--webhook-url", hook_receiver.url)["webhook_secret"]
    again = run(capsys, "client", "update", cid, "--webhook-url", hook_receiver.url + "2")
    assert "webhook_secret" not in again, "a secret is created once, then only rotated"

    rotated = run(capsys, "client", "webhook-secret", "rotate", cid, "--overlap", "2h")
    assert rotated["webhook_secret"] not in (first, None) and rotated["previous_secret_signs_until"]
    client = Client.objects.get(client_id=cid)
    webhook_send(client=client, event_type="t", data={})
    deliver_due()
    hook = hook_receiver.received[0]
    assert Webhook(first).verify(hook["body"], hook["headers"])
    assert Webhook(rotated["webhook_secret"]).verify(hook["body"], hook["headers"])
    events = set(AuditEvent.objects.filter(subject=f"client:{cid}").values_list("event", flat=True))
    assert {"client.contact_changed", "webhook.secret_created", "webhook.secret_rotated"} <= events

    assert run(capsys, "client", "update", cid, "--webhook-url", "", "--contact-email", "")["webhook_url"] == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--webhook-url", "http://hooks.example.com/x"], "https"),
    (["--webhook-url", "http://127.0.0.1:8080/x"], "https"),  # loopback http needs the dev override
    (["--webhook-url", "https://user:pw@hooks.example.com/x"], "without credentials"),
    (["--webhook-url", "https://hooks.example.com/x#frag"], "fragment"),
    (["--webhook-url", "ftp://hooks.example.com/x"], "https"),
    (["--webhook-url", "https://hooks.example.com/" + "a" * 500], "at most 500"),
    (["--contact-email", "not-an-address"], "contact_email"),
    (["--contact-email", "a@" + "b" * 250 + ".example"], "at most 254"),
])
def test_bad_values_are_refused(capsys, args, message):
    code, error = fail(capsys, "client", "create", "--name", "svc", "--type", "confidential",
                       "--grant", "client_credentials", *args)
    assert code == 1 and message in str(error)
    assert not Client.objects.exists(), "nothing half-created"
    assert not AuditEvent.objects.filter(event="client.created").exists()


def test_rotate_needs_a_known_client(capsys):
    code, error = fail(capsys, "client", "webhook-secret", "rotate", "nope")
    assert code == 1 and "no such client" in str(error)
