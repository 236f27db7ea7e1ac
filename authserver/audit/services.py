"""Writing audit events: inside the transaction that does the thing (Zulip's ``do_*`` pattern).

If the event can't be written, the transaction fails with it: nothing security-relevant happens
without its record (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from authserver.audit import sealing
from authserver.audit.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """The bytes the chain covers: every column but the chain itself, in a fixed encoding."""
    body = {
        "id": event.id,
        "at": event.at.isoformat(),
        "event": event.event,
        "outcome": event.outcome,
        "actor": event.actor,
        "subject": event.subject,
        "details": event.details,
        "personal": bytes(event.personal).hex() if event.personal else None,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_value(previous: str, event: AuditEvent) -> str:
    return hmac.new(sealing.chain_key(), previous.encode() + b"|" + canonical(event), hashlib.sha256).hexdigest()


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
    """Append one event. ``personal`` (addresses, user agents, usernames) is stored encrypted."""
    with transaction.atomic():
        head = _locked_head()
        next_id = head.last_id + 1
        record = AuditEvent(
            id=next_id, at=timezone.now(), event=event[:64], outcome=outcome[:16], actor=str(actor)[:200],
            subject=str(subject)[:200], details=details or {},
        )
        if personal:
            record.personal = sealing.seal(json.dumps(personal, sort_keys=True, default=str).encode(), record_id=next_id)
        record.chain = chain_value(head.chain or GENESIS, record)
        record.save(force_insert=True)
        head.last_id, head.chain = next_id, record.chain
        head.save(update_fields=["last_id", "chain"])
    return record


def personal_data(event: AuditEvent) -> dict[str, Any]:
    """The decrypted personal data of an event (for staff with the permission)."""
    if not event.personal:
        return {}
    return json.loads(sealing.unseal(bytes(event.personal), record_id=event.id))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
