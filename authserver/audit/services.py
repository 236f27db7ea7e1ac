"""Writing audit events: inside the transaction that does the thing (Zulip's ``do_*`` pattern).

If the event can't be written, the transaction fails with it: nothing security-relevant happens
without its record (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from authserver.audit import sealing
from authserver.audit.models import AuditChainHead, AuditEvent

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


_EVENT_COLUMNS = ("id", "at", "event", "outcome", "actor", "subject", "details", "personal", "chain")


_built: dict[str, tuple[str, str, str]] = {}


def _statements(connection: Any) -> tuple[str, str, str]:
    """The three fixed statements of an append (lock and read the head, insert, move the head):
    built once per database, so issuing a token doesn't compile three ORM queries for its audit event."""
    if connection.alias not in _built:
        _built[connection.alias] = _build_statements(connection)
    return _built[connection.alias]


def _event_fields() -> list[models.Field[Any, Any]]:
    # Every name in _EVENT_COLUMNS is a concrete column (not a relation's reverse side).
    return [cast("models.Field[Any, Any]", AuditEvent._meta.get_field(name)) for name in _EVENT_COLUMNS]


def _build_statements(connection: Any) -> tuple[str, str, str]:
    ops = connection.ops
    head, events = ops.quote_name(AuditChainHead._meta.db_table), ops.quote_name(AuditEvent._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    columns = ", ".join(ops.quote_name(field.column) for field in _event_fields())
    return (
        f"SELECT last_id, chain FROM {head} WHERE id = 1{lock}",  # noqa: S608 - fixed identifiers
        f"INSERT INTO {events} ({columns}) VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))})",  # noqa: S608
        f"UPDATE {head} SET last_id = %s, chain = %s WHERE id = 1",  # noqa: S608
    )


def _locked_head(cursor: Any, select: str) -> tuple[int, str]:
    cursor.execute(select)
    row = cursor.fetchone()
    if row is None:
        AuditChainHead.objects.get_or_create(pk=1)
        cursor.execute(select)
        row = cursor.fetchone()
    return int(row[0]), row[1] or ""


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
    change, which is the point. The head row's lock keeps the chain linear across processes.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    select, insert, move = _statements(connection)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        last_id, previous = _locked_head(cursor, select)
        next_id = last_id + 1
        record = AuditEvent(
            id=next_id,
            at=timezone.now(),
            event=event[:64],
            outcome=outcome[:16],
            actor=str(actor)[:200],
            subject=str(subject)[:200],
            details=details or {},
        )
        plaintext = json.dumps(personal, sort_keys=True, default=str).encode() if personal else None
        if plaintext:
            record.personal = sealing.seal(plaintext, record_id=next_id)
        record.chain = chain_value(previous or GENESIS, record, plaintext)
        cursor.execute(insert, [field.get_db_prep_save(getattr(record, field.attname), connection)
                                for field in _event_fields()])
        cursor.execute(move, (next_id, record.chain))
    record._state.adding = False
    record._state.db = DEFAULT_DB_ALIAS
    return record


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
