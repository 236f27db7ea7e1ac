"""The API-key expiry jobs: Standard Webhooks and e-mail warnings before a key expires, expired keys
recorded, and rotation grace periods ended on a real Celery worker.

A real HTTP receiver takes the webhooks; nothing is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from clients.webhooks.services import client_contact_set
from keys import jobs, services, tasks
from keys.models import ApiKey, ApiKeyStatus
from keys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_suspend
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE, make_client
from tests.keys.conftest import credential_state, wait_for
from tests.webhooks.receiver import deliver_due, receiver


@pytest.fixture
def webhook_receiver(settings: Any) -> Iterator[Any]:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    with receiver() as server:
        yield server


@pytest.mark.django_db
def test_expiry_warnings_signed_webhook_and_email_once(settings, webhook_receiver, key_owner):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    _, whsec = client_contact_set(client=key_owner, webhook_url=webhook_receiver.url,
                                  contact_email="ops@customer.example", actor="test")
    quiet, _ = make_client(name="no contact")  # warned (recorded) but nobody to tell

    soon, soon_plaintext = api_key_create(client=key_owner, name="prod-eu", expires_in=timedelta(days=2))
    api_key_create(client=key_owner, name="far", expires_in=timedelta(days=60))
    revoked, _ = api_key_create(client=key_owner, name="revoked", expires_in=timedelta(days=2))
    api_key_revoke(key=revoked)
    suspended, _ = api_key_create(client=key_owner, name="suspended", expires_in=timedelta(days=2))
    api_key_suspend(key=suspended)
    rotated, _ = api_key_create(client=key_owner, name="rotated", expires_in=timedelta(days=60))
    api_key_rotate(key=rotated, grace=timedelta(hours=1))  # grace_ends soon: rotation, not expiry
    gone, _ = api_key_create(client=key_owner, name="gone", expires_in=timedelta(days=2))
    ApiKey.objects.filter(pk=gone.pk).update(expires=timezone.now() - timedelta(minutes=1))
    silent, _ = api_key_create(client=quiet, name="silent", expires_in=timedelta(days=1))

    started = int(time.time())
    assert jobs.expiry_warnings_send() == 2
    deliver_due()

    assert len(webhook_receiver.received) == 1
    hook = webhook_receiver.received[0]
    assert hook["path"] == "/hooks/authserver"
    assert hook["headers"]["Content-Type"] == "application/json"
    envelope = Webhook(whsec).verify(hook["body"], hook["headers"])  # what the receiver does
    payload = envelope["data"]
    assert envelope["type"] == "api_key.expiring"
    assert payload == {"key_id": str(soon.id), "key_hint": soon.hint, "name": "prod-eu",
                       "client_id": key_owner.client_id, "expires": payload["expires"]}
    assert abs(datetime.fromisoformat(payload["expires"]) - soon.expires) < timedelta(seconds=1)
    assert started <= int(hook["headers"]["webhook-timestamp"]) <= time.time()
    assert soon_plaintext not in hook["body"].decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@customer.example"]
    assert "prod-eu" in message.subject and soon.hint in message.body
    assert soon_plaintext not in message.subject + message.body

    warned = set(ApiKey.objects.filter(expiry_warned__isnull=False).values_list("pk", flat=True))
    assert warned == {soon.pk, silent.pk}

    # A second run finds nothing to say.
    assert jobs.expiry_warnings_send() == 0
    deliver_due()
    assert len(webhook_receiver.received) == 1 and len(mail.outbox) == 1


@pytest.mark.django_db
def test_keys_expire_marks_expired_keys_and_is_idempotent(key_owner):
    past = timezone.now() - timedelta(seconds=1)
    expired_active, plaintext = api_key_create(client=key_owner, name="a")
    expired_suspended, _ = api_key_create(client=key_owner, name="s")
    api_key_suspend(key=expired_suspended)
    expired_revoked, _ = api_key_create(client=key_owner, name="r")
    api_key_revoke(key=expired_revoked)
    live, _ = api_key_create(client=key_owner, name="live")
    ApiKey.objects.filter(pk__in=[expired_active.pk, expired_suspended.pk, expired_revoked.pk]).update(expires=past)
    versions = dict(ApiKey.objects.values_list("pk", "version"))
    # Verification refuses the key already; the job only records it.
    assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    assert services.api_keys_expire() == 2
    status = dict(ApiKey.objects.values_list("pk", "status"))
    assert status == {expired_active.pk: ApiKeyStatus.EXPIRED, expired_suspended.pk: ApiKeyStatus.EXPIRED,
                      expired_revoked.pk: ApiKeyStatus.REVOKED, live.pk: ApiKeyStatus.ACTIVE}
    after = dict(ApiKey.objects.values_list("pk", "version"))
    assert after[expired_active.pk] == versions[expired_active.pk] + 1
    assert after[expired_revoked.pk] == versions[expired_revoked.pk] and after[live.pk] == versions[live.pk]

    assert services.api_keys_expire() == 0
    assert dict(ApiKey.objects.values_list("pk", "version")) == after


def test_grace_periods_end_on_a_real_worker(worker, key_owner):
    ended, ended_plaintext = api_key_create(client=key_owner, name="ended")
    successor, successor_plaintext = api_key_rotate(key=ended, grace=timedelta(hours=1))
    grace_end = timezone.now() - timedelta(seconds=1)
    ApiKey.objects.filter(pk=ended.pk).update(grace_ends=grace_end)
    in_grace, in_grace_plaintext = api_key_create(client=key_owner, name="in grace")
    api_key_rotate(key=in_grace, grace=timedelta(hours=1))
    version = ApiKey.objects.get(pk=ended.pk).version
    assert api_key_verify(key=ended_plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    tasks.grace_periods_end.delay()
    old = wait_for(lambda: ApiKey.objects.filter(pk=ended.pk, status=ApiKeyStatus.REVOKED).first(),
                    "the grace job on the worker", worker)
    assert old.revoked == grace_end and old.version == version + 1
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE
    assert ApiKey.objects.get(pk=in_grace.pk).status == ApiKeyStatus.ACTIVE
    assert api_key_verify(key=successor_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True
    assert api_key_verify(key=in_grace_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True

    before = credential_state(key_owner)
    assert services.api_keys_grace_end() == 0
    assert credential_state(key_owner) == before
