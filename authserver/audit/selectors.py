"""Reading the audit trail: verification of the chain and of its checkpoints, and JSON-lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from authserver.audit import checkpoint_file, sealing
from authserver.audit.checkpoint_file import Checkpoint
from authserver.audit.checkpoints import anchor_problems, checkpoint_path
from authserver.audit.models import AuditChainHead, AuditCheckpointState, AuditEvent
from authserver.audit.services import GENESIS, chain_value, event_fields, personal_data


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    problem: str


@dataclass(frozen=True)
class Unsealed:
    """Events appended but not chained yet (the sealer runs every few seconds)."""

    count: int
    oldest_id: int | None
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class AnchorReport:
    """The checkpoint file checked: its signatures and links, and the database against its latest line."""

    path: str
    lines: int = 0
    written: int = 0  # checkpoints the database recorded writing
    latest: Checkpoint | None = None
    witness_pending: int = 0
    witness_failures: int = 0
    problems: list[ChainProblem] = field(default_factory=list)


class ChainReport(NamedTuple):
    checked: int
    problems: list[ChainProblem]
    unsealed: Unsealed


def audit_verify(*, batch_size: int = 2000, max_unsealed_age: float | None = None,
                 anchor: AnchorReport | None = None) -> ChainReport:
    """Walk the sealed chain in ``seq`` order; report problems and the events not sealed yet.

    An edited event breaks its own chain value; a deleted one leaves a gap in ``seq`` and breaks
    its successor's link; a reordered pair (swapped ``seq`` or ids) breaks both. Deleting the
    newest sealed events is caught by comparing with the chain head. Unsealed events are not in
    the chain yet, so they can't be checked: they are counted, and they are a problem only once
    the oldest is older than ``max_unsealed_age`` seconds (default
    ``AUTHSERVER_AUDIT_UNSEALED_MAX_AGE``): the sealer is not running, or is stuck on an event.

    The head itself lives in the database, so cutting the newest events *and* rewinding the head
    only shows against a record kept elsewhere: the latest signed checkpoint (``anchor``, default
    :func:`audit_anchor_verify`), whose problems come first.
    """
    anchor = anchor if anchor is not None else audit_anchor_verify()
    problems: list[ChainProblem] = list(anchor.problems)
    previous, expected, checked = GENESIS, 1, 0
    while True:
        batch = _sealed_from(expected, batch_size)
        for event in batch:
            checked += 1
            seq = int(event.seq or 0)
            if seq != expected:
                problems.append(ChainProblem(event.id, f"sealed events {expected}..{seq - 1} (seq) are missing"))
            if _chain_of(previous, event) != event.chain:
                problems.append(ChainProblem(
                    event.id, "chain value does not match: edited, reordered, or its predecessor was removed"))
            previous, expected = event.chain or "", seq + 1
        if batch:
            continue
        # Read after the walk: the sealer moves the head and the events in one transaction, so the
        # head can only be at or past what was read; if it moved on meanwhile, walk the rest too.
        head = AuditChainHead.objects.filter(pk=1).first()
        last_seq, head_chain = (head.last_seq, head.chain) if head is not None else (0, "")
        if last_seq >= expected and _sealed_from(expected, 1):
            continue
        if last_seq != expected - 1 or (last_seq and head_chain != previous):
            problems.append(ChainProblem(
                None, f"chain head names seq {last_seq} but the sealed trail ends at seq {expected - 1}: "
                      "newest sealed events were removed or altered"))
        break
    unsealed = audit_unsealed()
    limit = float(settings.AUDIT_UNSEALED_MAX_AGE) if max_unsealed_age is None else max_unsealed_age
    if unsealed.oldest_age_seconds is not None and unsealed.oldest_age_seconds > limit:
        problems.append(ChainProblem(
            unsealed.oldest_id, f"{unsealed.count} events unsealed, the oldest for "
                                f"{unsealed.oldest_age_seconds:.0f} s (more than {limit:g} s): is the sealer running?"))
    return ChainReport(checked, problems, unsealed)


def audit_anchor_verify(*, public_keys: Mapping[str, Ed25519PublicKey] | None = None,
                        max_age: float | None = None, restored: bool = False) -> AnchorReport:
    """Check the checkpoint file, then the database against its latest line.

    Read in that order: the trail only grows after a checkpoint is written, so a checkpoint written
    meanwhile can't be mistaken for a rewind. ``public_keys``: earlier signing keys, by key id (the
    key store's current one is always trusted). ``max_age``: seconds the latest checkpoint may be
    old (default 5 intervals); older means checkpoints stopped, or the file was cut back.
    ``restored``: the database came from a backup (a restore drill, or before ``audit
    restore-point``): it is checked against the last checkpoint *it* recorded, which the file must
    hold, instead of the latest one, which is rightly ahead of it.
    """
    path = checkpoint_path()
    state = AuditCheckpointState.objects.filter(pk=1).first()
    written = state.written if state is not None else 0
    base: dict[str, Any] = {"path": str(path), "written": written,
                            "witness_pending": len(state.witness_pending) if state else 0,
                            "witness_failures": state.witness_failures if state else 0}
    recorded = (f"{written} checkpoints were written, the last at {state.last_at:%Y-%m-%dT%H:%M:%SZ} "
                f"(seq {state.last_seq})") if state is not None and state.written and state.last_at else ""
    if not path.exists():
        problems = [ChainProblem(None, f"the checkpoint file {path} is missing but {recorded}")] if recorded else []
        return AnchorReport(**base, problems=problems)
    key = sealing.checkpoint_signing_key().public_key()
    keys = {**(public_keys or {}), checkpoint_file.key_id(key): key}
    try:
        report = checkpoint_file.verify_lines(checkpoint_file.read_lines(path), keys,
                                              look_for=state.last_hash if state is not None else None)
    except OSError as exc:
        return AnchorReport(**base, problems=[ChainProblem(
            None, f"the checkpoint file {path} can't be read ({exc.strerror or type(exc).__name__})"
                  + (f" but {recorded}" if recorded else ""))])
    problems = [ChainProblem(None, f"checkpoint file line {p.line}: {p.problem}") for p in report.problems]
    if recorded and state is not None and state.last_hash and report.found is None:
        problems.append(ChainProblem(None, f"the checkpoint file lacks the last checkpoint the database recorded: "
                                           f"{recorded}; the file was cut back or replaced"))
    latest = report.latest
    if restored:
        if report.found is not None:
            problems += [ChainProblem(None, problem) for problem in anchor_problems(report.found)]
        elif not problems:
            problems.append(ChainProblem(None, "--restored: the database records no checkpoint to check it against"))
    elif latest is not None:
        problems += [ChainProblem(None, problem) for problem in anchor_problems(latest)]
        limit = 5.0 * settings.AUDIT_CHECKPOINT_INTERVAL if max_age is None else max_age
        age = _age(latest.at)
        if age is None or age > limit:
            problems.append(ChainProblem(None, f"the latest {latest.describe()} is older than {limit:g} s: "
                                               "checkpoints stopped (is beat running?) or the file was cut back"))
    return AnchorReport(**base, lines=report.checked, latest=latest, problems=problems)


def _age(at: str) -> float | None:
    try:
        return (timezone.now() - datetime.fromisoformat(at)).total_seconds()
    except (ValueError, TypeError):
        return None


def _sealed_from(seq: int, limit: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq")[:limit])


def _chain_of(previous: str, event: AuditEvent) -> str | None:
    try:
        return chain_value(previous, event)
    except Exception:  # noqa: BLE001 - personal data that no longer decrypts was moved or edited
        return None


def audit_unsealed() -> Unsealed:
    row = AuditEvent.objects.filter(seq__isnull=True).aggregate(count=Count("id"), oldest_id=Min("id"),
                                                                oldest_at=Min("at"))
    oldest_at = row["oldest_at"]
    age = max(0.0, (timezone.now() - oldest_at).total_seconds()) if oldest_at is not None else None
    return Unsealed(count=int(row["count"]), oldest_id=row["oldest_id"], oldest_age_seconds=age)


def audit_export(*, with_personal: bool) -> Iterator[str]:
    """One JSON object per line, in id order; ``seq`` and ``chain`` are null for unsealed events."""
    last = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last).order_by("id")[:1000])
        if not batch:
            return
        for event in batch:
            row: dict[str, Any] = {**event_fields(event), "seq": event.seq, "chain": event.chain}
            if with_personal:
                row["personal"] = personal_data(event)
            yield json.dumps(row, sort_keys=True)
            last = event.id
