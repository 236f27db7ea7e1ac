"""The sealer: appends are unchained until sealed; sealing is ordered, gap-free and exactly once."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from authserver.audit.models import AuditChainHead, AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from authserver.audit.services import audit_record


def on_postgres(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(connection.vendor != "postgresql", reason=f"{reason}; runs in the PostgreSQL pass")


def _append(n: int, tag: str = "t") -> list[AuditEvent]:
    return [audit_record(event="test.event", subject=f"{tag}:{i}", personal={"ip": f"192.0.2.{i % 250}"})
            for i in range(n)]


@pytest.mark.django_db
def test_appended_events_wait_unsealed_and_verify_reports_them(capsys):
    first = _append(2, "sealed")
    assert audit_seal() == 2
    waiting = _append(3, "waiting")
    assert all(e.seq is None and e.chain is None for e in AuditEvent.objects.filter(pk__in=[w.pk for w in waiting]))

    checked, problems, unsealed = audit_verify()
    assert checked == 2 and problems == []
    assert unsealed.count == 3 and unsealed.oldest_id == waiting[0].id
    assert unsealed.oldest_age_seconds is not None and 0 <= unsealed.oldest_age_seconds < 30

    call_command("audit", "verify")  # young unsealed events: success, with the count in the report
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["checked"] == 2
    assert report["unsealed"]["count"] == 3 and report["unsealed"]["oldest_id"] == waiting[0].id

    with pytest.raises(SystemExit) as exit_info:  # older than the allowed age: the sealer is not running
        call_command("audit", "verify", "--max-unsealed-age", "0")
    assert exit_info.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"][0]["event_id"] == waiting[0].id
    assert "unsealed" in report["problems"][0]["problem"]

    call_command("audit", "seal")
    assert json.loads(capsys.readouterr().out) == {"sealed": 3}
    checked, problems, unsealed = audit_verify(max_unsealed_age=0)
    assert checked == 5 and problems == [] and unsealed.count == 0
    assert list(AuditEvent.objects.order_by("seq").values_list("id", flat=True)) == [e.id for e in first + waiting]
    assert AuditChainHead.objects.get(pk=1).last_seq == 5


@pytest.mark.django_db
def test_stale_unsealed_events_fail_verify_at_the_configured_age(settings):
    event = _append(1)[0]
    AuditEvent.objects.filter(pk=event.pk).update(at=timezone.now() - timedelta(seconds=120))
    settings.AUDIT_UNSEALED_MAX_AGE = 300
    assert audit_verify().problems == []
    settings.AUDIT_UNSEALED_MAX_AGE = 60
    assert [p.event_id for p in audit_verify().problems] == [event.id]


@pytest.mark.django_db
def test_deleting_the_newest_sealed_event_shows_although_newer_ones_wait_unsealed():
    sealed = _append(3)
    audit_seal()
    _append(2, "later")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [sealed[-1].id])
    problems = audit_verify().problems
    assert problems and "head names seq 3" in problems[0].problem


@pytest.mark.django_db
def test_personal_data_stays_bound_to_its_event_id():
    event = _append(1)[0]
    audit_seal()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert b"192.0.2" not in bytes(stored.personal)
    from authserver.audit.services import personal_data

    assert personal_data(stored) == {"ip": "192.0.2.0"}


def _in_thread(target, *args) -> threading.Thread:
    def run() -> None:
        try:
            target(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_and_sealers_seal_every_event_exactly_once():
    writers, per_writer = 4, 25
    errors: list[BaseException] = []
    done = threading.Event()

    def write(tag: str) -> None:
        try:
            _append(per_writer, tag)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def seal_until_done() -> None:
        try:
            while not done.is_set():
                audit_seal(batch_size=7)
                done.wait(0.01)  # as beat would, not a busy loop: on SQLite each run takes the one write lock
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    sealers = [_in_thread(seal_until_done) for _ in range(2)]
    threads = [_in_thread(write, f"w{n}") for n in range(writers)]
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    for thread in sealers:
        thread.join(timeout=60)
    close_old_connections()
    assert errors == []
    audit_seal()
    total = writers * per_writer
    seqs = sorted(AuditEvent.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))  # every event sealed, once, without gaps
    checked, problems, unsealed = audit_verify(max_unsealed_age=0)
    assert checked == total and problems == [] and unsealed.count == 0


@on_postgres("two writing transactions at once need PostgreSQL (SQLite has one writer)")
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_is_sealed_after_newer_ones():
    """Ids commit out of order: the chain follows commit (seal) order, and verify accepts it."""
    appended, release = threading.Event(), threading.Event()
    slow: list[AuditEvent] = []

    def slow_writer() -> None:
        with transaction.atomic():
            slow.append(audit_record(event="test.slow"))
            appended.set()
            release.wait(30)

    thread = _in_thread(slow_writer)
    assert appended.wait(30)
    fast = audit_record(event="test.fast")
    assert audit_seal() == 1  # the slow one is not committed: the sealer doesn't see it
    release.set()
    thread.join(30)
    assert audit_seal() == 1
    slow_row, fast_row = AuditEvent.objects.get(pk=slow[0].pk), AuditEvent.objects.get(pk=fast.pk)
    assert slow_row.id < fast_row.id and slow_row.seq == fast_row.seq + 1
    assert audit_verify(max_unsealed_age=0).problems == []


@on_postgres("the seal lock is a PostgreSQL advisory lock (SQLite: the write lock)")
@pytest.mark.django_db(transaction=True)
def test_a_second_sealer_returns_at_once_while_one_is_sealing():
    from authserver.audit.sealer import SEAL_LOCK_KEY

    _append(3)
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [SEAL_LOCK_KEY])
        assert audit_seal() == 0
        assert AuditEvent.objects.filter(seq__isnull=True).count() == 3
    finally:
        holder.close()
    assert audit_seal() == 3
