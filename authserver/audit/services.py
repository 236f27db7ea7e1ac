"""Writing audit events: inside the transaction that does the thing (Zulip's ``do_*`` pattern).

If the event can't be written, the transaction fails with it: nothing security-relevant happens
without its record (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.db import transaction
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
    body = {
        "id": event.id,
        "at": event.at.isoformat(),
        "event": event.event,
        "outcome": event.outcome,
        "actor": event.actor,
        "subject": event.subject,
        "details": event.details,
        "personal": personal_plaintext.decode() if personal_plaintext else None,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_value(previous: str, event: AuditEvent, personal_plaintext: bytes | None = None) -> str:
    body = canonical(event, personal_plaintext)
    return hmac.new(sealing.chain_key(), previous.encode() + b"|" + body, hashlib.sha256).hexdigest()


def _locked_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


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
    change, which is the point (and saves two round trips on every token issued).
    """
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        next_id = head.last_id + 1
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
        record.chain = chain_value(head.chain or GENESIS, record, plaintext)
        record.save(force_insert=True)
        head.last_id, head.chain = next_id, record.chain
        head.save(update_fields=["last_id", "chain"])
    return record


def personal_data(event: AuditEvent) -> dict[str, Any]:
    """The decrypted personal data of an event (for staff with the permission)."""
    if not event.personal:
        return {}
    return json.loads(sealing.unseal(bytes(event.personal), record_id=event.id))


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
            fresh = sealing.reseal(bytes(ciphertext), record_id=event_id)
            if fresh is not None:
                AuditEvent.objects.filter(id=event_id).update(personal=fresh)
                moved += 1
            last = event_id
