"""Migration 0002: a trail chained by the old head-locked appends keeps verifying, and new
appends continue it (PostgreSQL: the id sequence moved past the explicitly written old ids)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from authserver.audit import sealing
from authserver.audit.models import AuditChainHead, AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from authserver.audit.services import GENESIS, audit_record, chain_value

OLD = [("audit", "0001_initial")]


def _migrate(target: list[tuple[str, str]] | None) -> None:
    """Migrate the audit app to ``target`` (None: its latest migration, 0002 and the ones after it)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target or executor.loader.graph.leaf_nodes("audit"))


def _old_append(cursor, event_id: int, previous: str, personal: dict | None) -> str:
    """What audit_record wrote before 0002: the next id, chained at once, and the head moved."""
    event = AuditEvent(id=event_id, at=timezone.now(), event="old.event", outcome="success", actor="cli",
                       subject=f"thing:{event_id}", details={"n": event_id})
    plaintext = json.dumps(personal).encode() if personal else None
    ciphertext = sealing.seal(plaintext, record_id=event_id) if plaintext else None
    chain = chain_value(previous, event, plaintext)
    cursor.execute(
        "INSERT INTO audit_auditevent (id, at, event, outcome, actor, subject, details, personal, chain) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [event_id, event.at, event.event, event.outcome, event.actor, event.subject, json.dumps(event.details),
         ciphertext, chain],
    )
    cursor.execute("UPDATE audit_auditchainhead SET last_id = %s, chain = %s WHERE id = 1", [event_id, chain])
    return chain


@pytest.mark.django_db(transaction=True)
def test_an_old_trail_keeps_verifying_and_new_events_continue_it():
    _migrate(OLD)
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")
            cursor.execute("DELETE FROM audit_auditchainhead")
            cursor.execute("INSERT INTO audit_auditchainhead (id, last_id, chain) VALUES (1, 0, '')")
            previous = GENESIS
            for event_id in (1, 2, 3):
                previous = _old_append(cursor, event_id, previous, {"ip": "192.0.2.1"} if event_id != 2 else None)
    finally:
        _migrate(None)

    assert list(AuditEvent.objects.order_by("id").values_list("id", "seq")) == [(1, 1), (2, 2), (3, 3)]
    assert AuditChainHead.objects.get(pk=1).last_seq == 3
    report = audit_verify(max_unsealed_age=0)
    assert report.checked == 3 and report.problems == [] and report.unsealed.count == 0

    fresh = audit_record(event="new.event", personal={"ip": "192.0.2.2"})
    assert fresh.id > 3  # the id sequence does not hand out an old id again
    assert audit_seal() == 1
    report = audit_verify(max_unsealed_age=0)
    assert report.checked == 4 and report.problems == []
    assert AuditEvent.objects.get(pk=fresh.pk).seq == 4
