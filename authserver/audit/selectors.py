"""Reading the audit trail: verification of the chain and JSON-lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from authserver.audit.models import AuditChainHead, AuditEvent
from authserver.audit.services import GENESIS, chain_value, event_fields, personal_data


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    problem: str


def audit_verify(*, batch_size: int = 2000) -> tuple[int, list[ChainProblem]]:
    """Walk the chain in id order; return (events checked, problems).

    An edited event breaks its own chain value; a deleted one breaks its successor's link (and
    leaves a gap in the ids); a reordered pair breaks both. Deleting the newest events is caught by
    comparing with the chain head.
    """
    problems: list[ChainProblem] = []
    previous, expected_id, checked = GENESIS, 1, 0
    last_seen = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_seen).order_by("id")[:batch_size])
        if not batch:
            break
        for event in batch:
            checked += 1
            if event.id != expected_id:
                problems.append(ChainProblem(expected_id, f"events {expected_id}..{event.id - 1} are missing"))
            try:
                value = chain_value(previous, event)
            except Exception:  # noqa: BLE001 - personal data that no longer decrypts was moved or edited
                value = None
            if value != event.chain:
                problems.append(
                    ChainProblem(
                        event.id, "chain value does not match: edited, reordered, or its predecessor was removed"
                    )
                )
            previous, expected_id, last_seen = event.chain, event.id + 1, event.id
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_id != last_seen or head.chain != (previous if last_seen else head.chain)):
        problems.append(
            ChainProblem(
                head.last_id,
                f"chain head names event {head.last_id} but the trail ends at "
                f"{last_seen}: newest events were removed or altered",
            )
        )
    return checked, problems


def audit_export(*, with_personal: bool) -> Iterator[str]:
    """One JSON object per line, oldest first."""
    last = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last).order_by("id")[:1000])
        if not batch:
            return
        for event in batch:
            row: dict[str, Any] = {**event_fields(event), "chain": event.chain}
            if with_personal:
                row["personal"] = personal_data(event)
            yield json.dumps(row, sort_keys=True)
            last = event.id
