"""The Celery side: a notification never fails its caller (broker down), and the beat sweep
delivers what is due and drops secrets past their overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from authserver.celery import app
from clients.webhooks import tasks
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from clients.webhooks.services import client_contact_set, webhook_secret_rotate
from keys import jobs
from keys.services import api_key_create
from tests.factories import make_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_broker_down_fails_open_and_the_sweep_delivers(hook_receiver, monkeypatch, eager,
                                                       django_capture_on_commit_callbacks):
    owner, _ = make_client(name="customer")
    _, whsec = client_contact_set(client=owner, webhook_url=hook_receiver.url, actor="test")
    api_key_create(client=owner, name="k", expires_in=timedelta(days=2))

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app.tasks["webhooks.deliver"], "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.expiry_warnings_send() == 1  # the warning is recorded; nothing raised
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.PENDING and hook_receiver.received == []

    monkeypatch.undo()
    assert tasks.sweep() == {"enqueued": 1, "secrets_dropped": 0}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert Webhook(whsec).verify(hook_receiver.received[0]["body"], hook_receiver.received[0]["headers"])


def test_deliver_task_schedules_its_retry_and_the_sweep_drops_old_secrets(hook_receiver, eager):
    owner, _ = make_client(name="customer")
    client_contact_set(client=owner, webhook_url=hook_receiver.url, actor="test")
    webhook_secret_rotate(client=owner, overlap=timedelta(hours=1), actor="test")
    hook_receiver.answers[:] = [(500, None)]
    delivery = WebhookDelivery.objects.create(msg_id="msg_t", client=owner, event_type="t", payload={},
                                              next_attempt=timezone.now())
    # Eager: the retry the task schedules runs at once and finds the delivery not yet due.
    assert tasks.deliver(str(delivery.pk)) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and len(hook_receiver.received) == 1
    assert tasks.deliver(str(delivery.pk)) is None  # not due: nothing sent early

    WebhookSecret.objects.filter(retires__isnull=False).update(retires=timezone.now())
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt=timezone.now())
    assert tasks.sweep() == {"enqueued": 1, "secrets_dropped": 1}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
