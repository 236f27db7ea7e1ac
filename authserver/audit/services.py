"""Writing audit events: inside the transaction that does the thing (Zulip's ``do_*`` pattern).

If the event can't be written, the transaction fails with it: nothing security-relevant happens
without its record (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from authserver.audit import sealing
from authserver.audit.context import note_written
from authserver.audit.models import AuditEvent

GENESIS = "0" * 64


def canonical(event: AuditEvent, personal_plaintext: bytes | None = None) -> bytes:
    """The bytes the chain covers: every column but the chain itself, in a fixed encoding.

    Personal data is covered as plaintext (inside the keyed HMAC, never stored), not as its
    ciphertext: key rotation can then re-encrypt it without breaking the chain, while moving or
    editing a ciphertext still shows (it no longer decrypts, or decrypts to something else).
    """
    if personal_plaintext is None and event.personal:
        personal_plaintext = sealing.unseal(bytes(event.personal), record_id=event.id)
    body = {**event_fields(event), "personal": personal_plaintext.decode() if personal_plaintext else None}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """An event's clear columns, as the chain and the export write them."""
    return {"id": event.id, "at": event.at.isoformat(), "event": event.event, "outcome": event.outcome,
            "actor": event.actor, "subject": event.subject, "details": event.details}


def chain_value(previous: str, event: AuditEvent, personal_plaintext: bytes | None = None) -> str:
    body = canonical(event, personal_plaintext)
    return hmac.new(sealing.chain_key(), previous.encode() + b"|" + body, hashlib.sha256).hexdigest()


_EVENT_COLUMNS = ("id", "at", "event", "outcome", "actor", "subject", "details", "personal")


@dataclass(frozen=True)
class _Statements:
    next_id: str | None  # PostgreSQL: draw the id first (the personal data's ciphertext is bound to it)
    insert: str  # SQLite: INSERT ... RETURNING id, then bind the personal data with ``bind``
    bind: str


_built: dict[str, _Statements] = {}


def _statements(connection: Any) -> _Statements:
    """The fixed statements of an append, built once per database, so issuing a token doesn't
    compile ORM queries for its audit event."""
    if connection.alias not in _built:
        _built[connection.alias] = _build_statements(connection)
    return _built[connection.alias]


def _event_fields() -> list[models.Field[Any, Any]]:
    # Every name in _EVENT_COLUMNS is a concrete column (not a relation's reverse side).
    return [cast("models.Field[Any, Any]", AuditEvent._meta.get_field(name)) for name in _EVENT_COLUMNS]


def _build_statements(connection: Any) -> _Statements:
    ops = connection.ops
    table = AuditEvent._meta.db_table
    events = ops.quote_name(table)
    fields = _event_fields()
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    bind = f"UPDATE {events} SET personal = %s WHERE id = %s"  # noqa: S608 - fixed identifiers
    if connection.vendor == "postgresql":
        return _Statements(
            next_id=f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))",
            insert=f"INSERT INTO {events} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",  # noqa: S608
            bind=bind,
        )
    without_id = [field for field in fields if field.attname != "id"]
    return _Statements(
        next_id=None,
        insert=(f"INSERT INTO {events} ({', '.join(ops.quote_name(f.column) for f in without_id)}) "  # noqa: S608
                f"VALUES ({', '.join(['%s'] * len(without_id))}) RETURNING id"),
        bind=bind,
    )


def audit_record(
    *,
    event: str,
    actor: str = "system",
    subject: str = "",
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``personal`` (addresses, user agents, usernames) is stored encrypted.

    Inside a caller's transaction no savepoint is taken: a failed audit write fails the whole
    change, which is the point. No lock is taken either: this is a plain INSERT, and the sealer
    (authserver.audit.sealer) chains the event once it has committed. An event is therefore
    unsealed (``seq`` and ``chain`` NULL) for a few seconds; ``audit verify`` reports those.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    statements = _statements(connection)
    record = _new_record(event=event, actor=actor, subject=subject, outcome=outcome, details=details)
    plaintext = json.dumps(personal, sort_keys=True, default=str).encode() if personal else None
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if statements.next_id is not None:
            cursor.execute(statements.next_id)
            record.id = int(cursor.fetchone()[0])
            if plaintext:
                record.personal = sealing.seal(plaintext, record_id=record.id)
            cursor.execute(statements.insert, _values(record, connection))
        else:
            cursor.execute(statements.insert, _values(record, connection)[1:])
            record.id = int(cursor.fetchone()[0])
            if plaintext:  # SQLite holds the write lock until commit: nobody sees the row in between
                record.personal = sealing.seal(plaintext, record_id=record.id)
                cursor.execute(statements.bind, [record.personal, record.id])
    note_written()
    record._state.adding = False
    record._state.db = DEFAULT_DB_ALIAS
    return record


@dataclass(frozen=True)
class PendingEvent:
    """An audit event as an INSERT the caller runs in a statement of its own (PostgreSQL), so a
    change and its record are written in one round trip (``WITH change AS (...) <sql>``)."""

    record: AuditEvent
    sql: str
    params: list[Any]


# Ids drawn ahead from the sequence, a few at a time, so that an append carried by another
# statement needs no round trip of its own. The personal data's ciphertext is bound to the id, so
# the id must be known before the INSERT. Drawn ids are used within ID_RESERVE_SECONDS or dropped:
# the trail stays roughly in id order (the chain's order is ``seq``, never ``id``: a dropped id is a
# gap like a rolled-back transaction's), and a worker that sits idle never writes an old id.
ID_RESERVE_BLOCK = 16
ID_RESERVE_SECONDS = 1.0
_reserve_lock = threading.Lock()
_reserved: dict[tuple[str, str], tuple[float, deque[int]]] = {}


def _forget_reserved_ids() -> None:
    _reserved.clear()  # a forked worker must never write the ids its parent drew


os.register_at_fork(after_in_child=_forget_reserved_ids)


def _reserved_id(connection: Any) -> int:
    key = (connection.alias, str(connection.settings_dict.get("NAME")))
    now = time.monotonic()
    with _reserve_lock:
        drawn_at, ids = _reserved.get(key, (0.0, deque()))
        if ids and now - drawn_at < ID_RESERVE_SECONDS:
            return ids.popleft()
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",  # noqa: S608
                       [ID_RESERVE_BLOCK])
        fresh = deque(int(row[0]) for row in cursor.fetchall())
    first = fresh.popleft()
    with _reserve_lock:
        _reserved[key] = (now, fresh)
    return first


def audit_pending(
    *,
    event: str,
    actor: str,
    subject: str,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
) -> PendingEvent | None:
    """:func:`audit_record`'s event as a statement for the caller to run with its own change, in
    the same statement (so both commit or neither does); None where the database can't (SQLite:
    call :func:`audit_record` inside the change's transaction). Call :func:`audit_pending_written`
    once the statement has run."""
    connection = connections[DEFAULT_DB_ALIAS]
    statements = _statements(connection)
    if statements.next_id is None:
        return None
    record = _new_record(event=event, actor=actor, subject=subject, outcome=outcome, details=details)
    plaintext = json.dumps(personal, sort_keys=True, default=str).encode() if personal else None
    record.id = _reserved_id(connection)
    if plaintext:
        record.personal = sealing.seal(plaintext, record_id=record.id)
    return PendingEvent(record=record, sql=statements.insert, params=_values(record, connection))


def audit_pending_written(pending: PendingEvent) -> AuditEvent:
    note_written()
    pending.record._state.adding = False
    pending.record._state.db = DEFAULT_DB_ALIAS
    return pending.record


def _new_record(*, event: str, actor: str, subject: str, outcome: str, details: dict[str, Any] | None) -> AuditEvent:
    return AuditEvent(
        at=timezone.now(),
        event=event[:64],
        outcome=outcome[:16],
        actor=str(actor)[:200],
        subject=str(subject)[:200],
        details=details or {},
    )


def _values(record: AuditEvent, connection: Any) -> list[Any]:
    return [field.get_db_prep_save(getattr(record, field.attname), connection) for field in _event_fields()]


def personal_data(event: AuditEvent) -> dict[str, Any]:
    """The decrypted personal data of an event (for staff with the permission)."""
    if not event.personal:
        return {}
    data: dict[str, Any] = json.loads(sealing.unseal(bytes(event.personal), record_id=event.id))
    return data


def audit_reencrypt(*, batch_size: int = 500) -> int:
    """Re-encrypt personal data under the current key version (run by the key-rotation job).

    Only the ciphertext column changes; the chain covers the plaintext, so it stays valid.
    Resumable and idempotent: rows already under the current version are skipped.
    """
    moved, last = 0, 0
    while True:
        rows = list(
            AuditEvent.objects.filter(id__gt=last, personal__isnull=False)
            .order_by("id")
            .values_list("id", "personal")[:batch_size]
        )
        if not rows:
            return moved
        for event_id, ciphertext in rows:
            fresh = sealing.reseal(bytes(ciphertext or b""), record_id=event_id)  # never None: filtered
            if fresh is not None:
                AuditEvent.objects.filter(id=event_id).update(personal=fresh)
                moved += 1
            last = event_id
