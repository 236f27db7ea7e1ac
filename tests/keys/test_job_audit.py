"""Each key job records what it changes: one audit event per key (or per batch), actor ``job:<task>``.

The tasks run in this process here (their bodies, no worker): tests/keys/test_jobs.py covers the
real worker; this covers the audit trail they leave.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from authserver.audit.models import AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from clients.models import RetiredClientSecret
from clients.services import client_secret_rotate
from keys import tasks
from keys.models import ApiKey, ApiKeyStatus
from keys.services import api_key_create, api_key_revoke, api_key_rotate, compromise_response_start
from tests.factories import make_client

pytestmark = pytest.mark.django_db


def events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name).order_by("id"))


def test_expiry_job_audits_each_key_it_expires(key_owner):
    past = timezone.now() - timedelta(seconds=1)
    expired = [api_key_create(client=key_owner, name=f"e{i}")[0] for i in range(2)]
    revoked, _ = api_key_create(client=key_owner, name="r")
    api_key_revoke(key=revoked)
    api_key_create(client=key_owner, name="live")
    ApiKey.objects.filter(pk__in=[k.pk for k in [*expired, revoked]]).update(expires=past)

    assert tasks.keys_expire() == 2
    recorded = events("api_key.expired")
    assert {e.subject for e in recorded} == {f"key:{k.pk}" for k in expired}
    assert {e.actor for e in recorded} == {"job:keys.expire"}
    assert ApiKey.objects.get(pk=revoked.pk).status == ApiKeyStatus.REVOKED

    assert tasks.keys_expire() == 0
    assert len(events("api_key.expired")) == 2
    assert audit_seal() >= 2  # the job's events are chained like any other
    report = audit_verify()
    assert report.problems == [] and report.unsealed.count == 0


def test_grace_job_audits_each_key_and_the_secret_purge(key_owner):
    rotated, _ = api_key_create(client=key_owner, name="rotated")
    api_key_rotate(key=rotated, grace=timedelta(hours=1))
    ended = timezone.now() - timedelta(seconds=1)
    ApiKey.objects.filter(pk=rotated.pk).update(grace_ends=ended)
    client_secret_rotate(client=key_owner, grace=timedelta(hours=1))
    RetiredClientSecret.objects.update(expires=ended)

    assert tasks.grace_periods_end() == {"api_keys_revoked": 1, "client_secrets_retired": 1}
    [grace] = events("api_key.grace_ended")
    assert grace.subject == f"key:{rotated.pk}" and grace.actor == "job:keys.grace_periods_end"
    assert grace.details["at"] == ended.isoformat()
    [purge] = events("client.retired_secrets_purged")
    assert purge.details["count"] == 1 and purge.details["client_ids"] == [key_owner.client_id]

    assert tasks.grace_periods_end() == {"api_keys_revoked": 0, "client_secrets_retired": 0}
    assert len(events("api_key.grace_ended")) == len(events("client.retired_secrets_purged")) == 1


def test_expiry_warnings_audit_each_warned_key(key_owner):
    soon, _ = api_key_create(client=key_owner, name="soon", expires_in=timedelta(days=1))
    api_key_create(client=key_owner, name="far", expires_in=timedelta(days=60))

    assert tasks.expiry_warnings() == 1
    [warned] = events("api_key.expiry_warned")
    assert warned.subject == f"key:{soon.pk}" and warned.actor == "job:keys.expiry_warnings"
    assert warned.details["channels"] == []  # nobody to tell, still recorded once
    assert tasks.expiry_warnings() == 0
    assert len(events("api_key.expiry_warned")) == 1


def test_compromise_job_audits_each_batch_and_the_end(settings):
    settings.COMPROMISE_BATCH_SIZE = 2
    victim, _ = make_client(name="victim")
    keys = [api_key_create(client=victim, name=f"k{i}")[0] for i in range(3)]
    response = compromise_response_start(client=victim, actor="cli")  # the enqueue waits for a commit

    counts = tasks.compromise_response_finish(str(response.pk))
    assert counts == {"api_keys": 3}
    batches = events("client.compromise_response_batch")
    assert [b.details["count"] for b in batches] == [2, 1]
    assert {i for b in batches for i in b.details["ids"]} == {str(k.pk) for k in keys}
    assert {b.actor for b in batches} == {"job:keys.compromise_response_finish"}
    [done] = events("client.compromise_response_done")
    assert done.subject == f"client:{victim.client_id}" and done.details["api_keys"] == 3

    assert tasks.compromise_response_finish(str(response.pk)) == counts  # finished: no change, no event
    assert len(events("client.compromise_response_batch")) == 2
