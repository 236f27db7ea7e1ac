"""Issue 13, item 3: every job that expires, revokes or ends a grace period leaves its events.

The table has a row for every Celery task the project registers: a job that changes a credential
runs here (its body, in this process) and must write exactly the events its row names, with actor
``job:<task name>``, a subject and details; a job that changes none says why. A task added without
a row fails :func:`test_the_table_covers_every_job`.

What one event covers, per job (README, "Audit trail"): one per API key expired, revoked at its
grace end or suspended; one per credential whose anomaly-tightened limit ends; one per run for
the retired client secrets a run drops (naming them all) and per batch of a compromise response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from authserver.anomaly import tasks as anomaly_tasks
from authserver.anomaly.models import Baseline
from authserver.audit.models import AuditEvent
from authserver.celery import app as celery_app
from authserver.crypto import rotation
from authserver.crypto import tasks as crypto_tasks
from authserver.oauth import tasks as oauth_tasks
from clients.models import RetiredClientSecret
from clients.services import client_secret_rotate
from clients.webhooks import tasks as webhook_tasks
from clients.webhooks.models import WebhookSecret
from clients.webhooks.services import webhook_secret_rotate
from keys import tasks as key_tasks
from keys.models import ApiKey
from keys.services import api_key_create, api_key_rotate, compromise_response_start
from tests.crypto.conftest import isolated_key_file  # noqa: F401 - the key store this test rotates
from tests.factories import make_client

pytestmark = pytest.mark.django_db

PAST = timedelta(seconds=1)


def _mark() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# A row: prepare, return (run the job, the events expected as (event, subject) -> count).
Row = Callable[[], tuple[Callable[[], Any], dict[tuple[str, str], int]]]


def _expire() -> Any:
    owner, _ = make_client(name="owner")
    keys = [api_key_create(client=owner, name=f"k{n}")[0] for n in range(2)]
    ApiKey.objects.filter(pk__in=[k.pk for k in keys]).update(expires=timezone.now() - PAST)
    return key_tasks.keys_expire, {("api_key.expired", f"key:{k.pk}"): 1 for k in keys}


def _grace() -> Any:
    owner, _ = make_client(name="owner")
    key, _ = api_key_create(client=owner, name="rotated")
    api_key_rotate(key=key, grace=timedelta(hours=1))
    ApiKey.objects.filter(pk=key.pk).update(grace_ends=timezone.now() - PAST)
    client_secret_rotate(client=owner, grace=timedelta(hours=1))
    RetiredClientSecret.objects.update(expires=timezone.now() - PAST)
    return key_tasks.grace_periods_end, {("api_key.grace_ended", f"key:{key.pk}"): 1,
                                         ("client.retired_secrets_purged", "client_secrets"): 1}


def _cleanup() -> Any:
    owner, _ = make_client(name="owner")
    client_secret_rotate(client=owner, grace=timedelta(hours=1))
    RetiredClientSecret.objects.update(expires=timezone.now() - PAST)
    return oauth_tasks.cleanup_expired_credentials, {("client.retired_secrets_purged", "client_secrets"): 1}


def _warnings() -> Any:
    owner, _ = make_client(name="owner")
    key, _ = api_key_create(client=owner, name="soon", expires_in=timedelta(days=1))
    return key_tasks.expiry_warnings, {("api_key.expiry_warned", f"key:{key.pk}"): 1}


def _compromise() -> Any:
    victim, _ = make_client(name="victim")
    for n in range(2):
        api_key_create(client=victim, name=f"k{n}")
    response = compromise_response_start(client=victim, actor="cli")
    subject = f"client:{victim.client_id}"
    return (lambda: key_tasks.compromise_response_finish(str(response.pk)),
            {("client.compromise_response_batch", subject): 1, ("client.compromise_response_done", subject): 1})


def _tightening() -> Any:
    owner, _ = make_client(name="tightened")
    subject = f"client:{owner.client_id}"
    Baseline.objects.create(subject=subject, client=owner, tightened_limit=5,
                            tightened_until=timezone.now() - PAST)
    return anomaly_tasks.traffic_minute, {("anomaly.tightening_expired", subject): 1}


def _rotation() -> Any:
    call_command("keys", "check", stdout=StringIO())
    job = rotation.rotate()
    return lambda: crypto_tasks.rotation_run(str(job.pk)), {("keystore.rotation_finished", f"kek:{job.target_version}"): 1}


def _webhook_secrets() -> Any:
    hooked, _ = make_client(name="hooked")
    webhook_secret_rotate(client=hooked, actor="test")
    webhook_secret_rotate(client=hooked, overlap=timedelta(hours=1), actor="test")  # the first one retires...
    WebhookSecret.objects.filter(client=hooked, retires__isnull=False).update(retires=timezone.now() - PAST)
    return webhook_tasks.sweep, {("webhook.secret_dropped", f"client:{hooked.client_id}"): 1}  # ...and goes


def _unused_registrations() -> Any:
    from clients.models import Client
    from clients.registration.models import Registration
    from clients.registration.tasks import expire_unused

    stale = Client.objects.create(name="agent", client_type="public", grant_types=["authorization_code"],
                                  authorization_grant_type="authorization-code", redirect_uris="http://127.0.0.1/cb",
                                  registration_source="dcr", client_secret="", hash_client_secret=False)
    Registration.objects.create(client=stale, token_digest="0" * 64, token_hint="rat_…0000",
                                created_at=timezone.now() - timedelta(days=2))
    return expire_unused, {("client.registration_expired", "registrations"): 1}


CHANGING: dict[str, Row] = {
    "registration.expire_unused": _unused_registrations,
    "webhooks.sweep": _webhook_secrets,
    "keys.expire": _expire,
    "keys.grace_periods_end": _grace,
    "authserver.oauth.cleanup_expired_credentials": _cleanup,
    "keys.expiry_warnings": _warnings,
    "keys.compromise_response_finish": _compromise,
    "anomaly.traffic_minute": _tightening,
    "crypto.rotation_run": _rotation,
}

# Jobs that change no credential: why no event.
UNCHANGING = {
    "audit.checkpoint": "signs a checkpoint of events already sealed (outside the database)",
    "webhooks.deliver": "sends one notification; changes no credential",
    "audit.seal": "chains events already written",
    "authserver.revocation.prune_events": "drops revocation events past their retention; changes no credential",
    "keys.usage_roll_up": "counts uses",
    "keys.reconcile": "re-enqueues stalled compromise responses (their finish job audits)",
    "crypto.reconcile": "re-enqueues stalled rotations (their run audits its end)",
}


def test_the_table_covers_every_job() -> None:
    celery_app.loader.import_default_modules()
    ours = {name for name in celery_app.tasks if not name.startswith("celery.")}
    assert "keys.expire" in ours
    assert ours - set(CHANGING) - set(UNCHANGING) == set(), "jobs without an audit-table row"


@pytest.mark.parametrize("task", sorted(CHANGING))
def test_each_job_writes_its_events_and_nothing_else(task: str) -> None:
    run, expected = CHANGING[task]()
    mark = _mark()
    run()
    written = list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))
    assert Counter((e.event, e.subject) for e in written) == Counter(expected)
    for event in written:
        assert event.actor == f"job:{task}", (event.event, event.actor)
        assert event.details, event.event
    # Run again: nothing left to change, nothing written.
    mark = _mark()
    run()
    assert not AuditEvent.objects.filter(id__gt=mark).exists()
