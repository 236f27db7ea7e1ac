"""Standard Webhooks deliveries, verified by the ``standardwebhooks`` library as a receiver would.

A real HTTP receiver on loopback takes every delivery; nothing is mocked.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from authserver.audit.models import AuditEvent
from clients.webhooks import delivery as delivery_module
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from clients.webhooks.services import webhook_secret_rotate, webhook_secrets_drop, webhook_send
from clients.webhooks.signing import mint_secret
from tests.factories import make_client
from tests.webhooks.receiver import deliver_due

pytestmark = pytest.mark.django_db


def _client_with_hook(url: str, name: str = "customer"):
    client, _ = make_client(name=name)
    client.webhook_url = url
    client.save(update_fields=["webhook_url"])
    _, secret = webhook_secret_rotate(client=client, actor="test")
    return client, secret


def _verify(secret: str, hook: dict) -> dict:
    return Webhook(secret).verify(hook["body"], hook["headers"])


def test_a_delivered_webhook_verifies_with_standardwebhooks(hook_receiver):
    client, secret = _client_with_hook(hook_receiver.url)
    assert secret.startswith("whsec_")
    sent = webhook_send(client=client, event_type="api_key.expiring", data={"key_id": "k1", "name": "prod"})
    (done,) = deliver_due()

    (hook,) = hook_receiver.received
    assert hook["path"] == "/hooks/authserver"
    assert _verify(secret, hook) == json.loads(hook["body"])
    assert json.loads(hook["body"]) == {"type": "api_key.expiring", "timestamp": sent.payload["timestamp"],
                                        "data": {"key_id": "k1", "name": "prod"}}
    assert hook["headers"]["webhook-id"] == sent.msg_id
    assert abs(int(hook["headers"]["webhook-timestamp"]) - time.time()) < 5
    assert hook["headers"]["webhook-signature"].startswith("v1,")
    assert hook["headers"]["Content-Type"] == "application/json"
    # The delivery log.
    assert (done.pk, done.status, done.attempts, done.last_status_code, done.last_error) == (
        sent.pk, DeliveryStatus.DELIVERED, 1, 204, "")
    assert done.delivered is not None and done.next_attempt is None
    assert deliver_due() == []  # delivered once


def test_forged_webhooks_do_not_verify(hook_receiver):
    client, secret = _client_with_hook(hook_receiver.url)
    other, other_secret = _client_with_hook(hook_receiver.url, name="other")
    webhook_send(client=client, event_type="anomaly.detected", data={"signal": "volume"})
    deliver_due()
    (hook,) = hook_receiver.received
    body, headers = hook["body"], hook["headers"]
    assert _verify(secret, hook)

    forgeries = {
        "wrong secret": (mint_secret(), body, headers),
        "another client's secret": (other_secret, body, headers),
        "altered body": (secret, body.replace(b"volume", b"fishing"), headers),
        "another message id": (secret, body, {**headers, "webhook-id": "msg_other"}),
        "timestamp moved": (secret, body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}),
        "no signature": (secret, body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
    }
    for name, (key, data, hdrs) in forgeries.items():
        with pytest.raises(WebhookVerificationError):
            Webhook(key).verify(data, hdrs)
            pytest.fail(name)
    # A correctly signed message that is old (a replay) is refused too.
    old = datetime.now(UTC) - timedelta(minutes=10)
    replay = {**headers, "webhook-timestamp": str(int(old.timestamp())),
              "webhook-signature": Webhook(secret).sign(headers["webhook-id"], old, body.decode())}
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, replay)
    # The other client's own deliveries are signed with its own secret only.
    webhook_send(client=other, event_type="anomaly.detected", data={})
    deliver_due()
    assert _verify(other_secret, hook_receiver.received[1])
    with pytest.raises(WebhookVerificationError):
        _verify(secret, hook_receiver.received[1])


def test_rotation_overlap_signs_with_both_then_only_the_new(hook_receiver):
    client, old_secret = _client_with_hook(hook_receiver.url)
    _, new_secret = webhook_secret_rotate(client=client, overlap=timedelta(hours=24), actor="test")
    webhook_send(client=client, event_type="t.during", data={})
    deliver_due()
    during = hook_receiver.received[-1]
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    assert _verify(old_secret, during) and _verify(new_secret, during)

    # The overlap ends: the old secret stops signing at once, whether or not the job ran yet.
    WebhookSecret.objects.filter(retires__isnull=False).update(retires=timezone.now() - timedelta(seconds=1))
    webhook_send(client=client, event_type="t.after", data={})
    deliver_due()
    after = hook_receiver.received[-1]
    assert len(after["headers"]["webhook-signature"].split(" ")) == 1
    assert _verify(new_secret, after)
    with pytest.raises(WebhookVerificationError):
        _verify(old_secret, after)

    assert webhook_secrets_drop() == 1
    assert WebhookSecret.objects.filter(client=client).count() == 1
    events = list(AuditEvent.objects.filter(event__startswith="webhook.secret_").order_by("id")
                  .values_list("event", "subject"))
    subject = f"client:{client.client_id}"
    assert [e for e in events if e[1] == subject] == [
        ("webhook.secret_created", subject), ("webhook.secret_rotated", subject), ("webhook.secret_dropped", subject)]
    assert webhook_secrets_drop() == 0


def test_retries_with_back_off_until_a_2xx(hook_receiver):
    client, secret = _client_with_hook(hook_receiver.url)
    hook_receiver.answers[:] = [(500, None), (302, "http://127.0.0.1:1/elsewhere"), (200, None)]
    sent = webhook_send(client=client, event_type="t", data={"n": 1})

    started = timezone.now()
    (first,) = deliver_due()
    assert (first.status, first.attempts, first.last_status_code, first.last_error) == (
        DeliveryStatus.PENDING, 1, 500, "HTTP 500")
    assert timedelta(seconds=9) < first.next_attempt - started < timedelta(seconds=12)
    assert deliver_due() == []  # not due yet: nothing is sent early

    WebhookDelivery.objects.filter(pk=sent.pk).update(next_attempt=timezone.now())
    (second,) = deliver_due()  # a redirect is a failure, and is not followed
    assert (second.attempts, second.last_status_code, second.status) == (2, 302, DeliveryStatus.PENDING)
    assert timedelta(seconds=55) < second.next_attempt - second.last_attempt <= timedelta(minutes=1)
    WebhookDelivery.objects.filter(pk=sent.pk).update(next_attempt=timezone.now())
    (third,) = deliver_due()
    assert (third.status, third.attempts, third.last_status_code) == (DeliveryStatus.DELIVERED, 3, 200)

    assert len(hook_receiver.received) == 3  # the redirect's target was never asked
    assert {h["headers"]["webhook-id"] for h in hook_receiver.received} == {sent.msg_id}
    assert all(_verify(secret, h) for h in hook_receiver.received)


def test_gives_up_after_the_last_back_off(hook_receiver):
    client, _ = _client_with_hook(hook_receiver.url)
    hook_receiver.answers[:] = [(503, None)] * 10
    sent = webhook_send(client=client, event_type="t", data={})
    gaps = []
    for _ in range(delivery_module.MAX_ATTEMPTS):
        (attempt,) = deliver_due()
        if attempt.next_attempt:
            gaps.append(round((attempt.next_attempt - attempt.last_attempt).total_seconds()))
        WebhookDelivery.objects.filter(pk=sent.pk, next_attempt__isnull=False).update(next_attempt=timezone.now())
    assert gaps == [10, 60, 300, 1800, 7200]
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.next_attempt) == (DeliveryStatus.FAILED, 6, None)
    assert deliver_due() == [] and len(hook_receiver.received) == 6


def test_nothing_unsigned_or_insecure_is_sent(hook_receiver, settings):
    unsigned, _ = make_client(name="no secret")
    unsigned.webhook_url = hook_receiver.url
    unsigned.save(update_fields=["webhook_url"])
    sent = webhook_send(client=unsigned, event_type="t", data={})
    (done,) = deliver_due()
    assert (done.pk, done.status, done.last_error) == (sent.pk, DeliveryStatus.FAILED, "no webhook secret: rotate one")

    client, _ = _client_with_hook(hook_receiver.url, name="dev")
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = False  # the override is off: http is refused at delivery too
    webhook_send(client=client, event_type="t", data={})
    (done,) = deliver_due()
    assert (done.status, done.last_error) == (DeliveryStatus.FAILED, "webhook URLs must use https")
    assert hook_receiver.received == []
    assert webhook_send(client=make_client(name="no url")[0], event_type="t", data={}) is None


def test_an_unreachable_endpoint_is_retried(settings):
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    client, _ = _client_with_hook("http://127.0.0.1:9/closed")  # nothing listens on the discard port
    webhook_send(client=client, event_type="t", data={})
    (done,) = deliver_due()
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.PENDING, 1, None)
    assert done.last_error == "ConnectionError"
