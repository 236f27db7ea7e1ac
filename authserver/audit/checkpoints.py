"""Anchoring the audit trail outside the database: signed checkpoints of the chain head.

The chain (authserver.audit.sealer) shows any edited or deleted event *behind* the head, but the
head lives in the same database: whoever can write it can delete the newest events and rewind
``AuditChainHead`` to the last one kept, and the chain still verifies. So every
``AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL`` seconds (beat, authserver/audit/tasks.py) the head
(``seq``, event id, chain value, sealed event count, time) is signed with an Ed25519 key held in
the key store (sealing.checkpoint_signing_key) and

* appended to a JSON-lines file outside the database (``AUTHSERVER_AUDIT_CHECKPOINT_PATH``,
  default ``<data dir>/audit-checkpoints.jsonl``; O_APPEND, fsynced, one writer at a time under
  a file lock), each line naming the previous line's hash (authserver.audit.checkpoint_file);
* POSTed, the same signed line, to ``AUTHSERVER_AUDIT_WITNESS_URL`` if set. The witness fails
  open: a refused or failed POST is logged and counted, and the line is sent again (with every
  other one not acknowledged yet, oldest first) the next time.

``audit verify`` then compares the database with the latest checkpoint (selectors.audit_verify):
a trail cut or rewound behind it is reported, naming the checkpoint.

A checkpoint never blesses a rewound trail: before writing, the writer checks that the database
still holds what the file's last checkpoint says; if not it refuses (the task fails, loudly,
every interval) until an operator records a restore point (``manage.py audit restore-point``),
itself a signed line in the file and an audit event.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from authserver.audit import checkpoint_file, sealing
from authserver.audit.checkpoint_file import Checkpoint, signed_line
from authserver.audit.models import AuditChainHead, AuditCheckpointState, AuditEvent
from authserver.audit.services import audit_record
from authserver.errors import DomainError

log = logging.getLogger("authserver.audit")

FILE_NAME = "audit-checkpoints.jsonl"
WITNESS_TIMEOUT = 5.0
WITNESS_MAX_PENDING = 1440  # a day of checkpoints at the default interval; older ones are dropped (logged)


class TrailRewound(DomainError):
    """The database no longer holds what the last checkpoint recorded: it was cut, rewound or restored."""


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH or Path(settings.DATA_DIR) / FILE_NAME)


@dataclass(frozen=True)
class Head:
    seq: int
    event_id: int | None
    chain: str
    count: int


def trail_head() -> Head:
    """The sealed trail's head as the database has it now."""
    head = AuditChainHead.objects.filter(pk=1).first()
    seq, chain = (head.last_seq, head.chain) if head is not None else (0, "")
    event_id = AuditEvent.objects.filter(seq=seq).values_list("id", flat=True).first() if seq else None
    count = AuditEvent.objects.filter(seq__isnull=False, seq__lte=seq).count() if seq else 0
    return Head(seq=seq, event_id=event_id, chain=chain, count=count)


def anchor_problems(checkpoint: Checkpoint) -> list[str]:
    """Why the database no longer holds what ``checkpoint`` recorded (empty: it still does).

    The event at the checkpoint's ``seq`` must be there, with the same id and chain value (the
    chain behind it is the sealer's to check), the head must not be behind it, and the sealed
    events must be at least as many.
    """
    problems: list[str] = []
    where = checkpoint.describe()
    head = AuditChainHead.objects.filter(pk=1).first()
    last_seq = head.last_seq if head is not None else 0
    if last_seq < checkpoint.seq:
        problems.append(f"the chain head is at seq {last_seq}, behind the {where}: "
                        "the newest sealed events were removed and the head rewound")
    if checkpoint.seq:
        event = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("id", "chain").first()
        if event is None:
            problems.append(f"the event at seq {checkpoint.seq} named by the {where} is missing")
        elif event[0] != checkpoint.event_id or event[1] != checkpoint.chain:
            problems.append(f"the event at seq {checkpoint.seq} does not match the {where} "
                            "(another id or chain value): the trail was rewritten from there")
    sealed = AuditEvent.objects.filter(seq__isnull=False).count()
    if sealed < checkpoint.count:
        problems.append(f"{sealed} sealed events, fewer than the {checkpoint.count} of the {where}")
    return problems


def _latest_in_file(path: Path) -> Checkpoint | None:
    raw = checkpoint_file.last_line(path)
    if raw is None:
        return None
    try:
        return checkpoint_file.parse_line(raw)[1]
    except (ValueError, TypeError) as exc:
        raise TrailRewound(f"the last line of the checkpoint file is unreadable ({exc})") from None


def audit_checkpoint(*, kind: str = "checkpoint", actor: str = "job:audit.checkpoint", reason: str = "") -> Checkpoint:
    """Sign the chain head and append it to the checkpoint file (then offer it to the witness).

    ``kind="restore"`` (``audit restore-point``) skips the rewind check: it is how an operator
    says the database was rewound on purpose; it writes an audit event naming the old and new head.
    """
    key = sealing.checkpoint_signing_key()
    path = checkpoint_path()
    with transaction.atomic():
        state, _ = AuditCheckpointState.objects.select_for_update().get_or_create(pk=1)
        with checkpoint_file.locked(path) as fd:
            previous = _latest_in_file(path)
            if kind == "checkpoint" and previous is not None and (problems := anchor_problems(previous)):
                raise TrailRewound("; ".join(problems) + ". If the database was restored, record it with "
                                   "'manage.py audit restore-point'")
            if state.last_hash and (previous is None or previous.hash != state.last_hash):
                log.error("audit: the checkpoint file does not end with the last checkpoint written",
                          extra={"path": str(path), "expected": state.last_hash})
            if kind == "restore":
                audit_record(event="audit.restore_point", actor=actor, subject="audit:trail",
                             details={"reason": reason, "previous_seq": previous.seq if previous else None,
                                      "previous_at": previous.at if previous else None})
            head = trail_head()
            now = timezone.now()
            body = {"kind": kind, "seq": head.seq, "event_id": head.event_id, "chain": head.chain,
                    "count": head.count, "at": now.isoformat(), "prev": previous.hash if previous else
                    checkpoint_file.GENESIS}
            line = signed_line(body, key)
            checkpoint_file.append(fd, line)
        checkpoint = checkpoint_file.parse_line(line)[1]
        state.written += 1
        state.last_seq, state.last_hash, state.last_at = head.seq, checkpoint.hash, now
        state.save()
    if settings.AUDIT_WITNESS_URL:
        witness_send(line)
    return checkpoint


def witness_send(line: bytes) -> bool:
    """POST every checkpoint the witness has not acknowledged, oldest first, ending with ``line``.

    Fails open (the checkpoint is in the file already): the first failure stops the round, is
    logged and counted, and the rest wait for the next checkpoint. No database lock is held while
    POSTing (on SQLite that would stop every writer); two rounds racing may send a line twice, so
    a witness keys what it keeps by the line's hash.
    """
    state, _ = AuditCheckpointState.objects.get_or_create(pk=1)
    pending = [*state.witness_pending, line.decode()]
    sent = 0
    for item in pending:
        if not _post(settings.AUDIT_WITNESS_URL, item.encode()):
            break
        sent += 1
    failed = sent < len(pending)
    acknowledged = set(pending[:sent])
    with transaction.atomic():
        state = AuditCheckpointState.objects.select_for_update().get(pk=1)
        rest = [item for item in [*state.witness_pending, line.decode()] if item not in acknowledged]
        rest = list(dict.fromkeys(rest))
        if len(rest) > WITNESS_MAX_PENDING:
            log.error("audit: witness unreachable too long, oldest checkpoints dropped from its queue",
                      extra={"dropped": len(rest) - WITNESS_MAX_PENDING})
            rest = rest[-WITNESS_MAX_PENDING:]
        state.witness_pending = rest
        state.witness_failures += int(failed)
        state.save(update_fields=["witness_pending", "witness_failures"])
    if failed:
        from authserver.observability import metrics

        metrics.audit_witness_failures.inc()
        log.warning("audit: witness did not acknowledge the checkpoint; it will be sent again",
                    extra={"pending": len(rest)})
    return not failed


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not an acknowledgement: urllib would follow it with a GET and no body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes) -> bool:
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - http(s) only (conf)
                                     headers={"Content-Type": "application/json"})
    try:
        with _opener.open(request, timeout=WITNESS_TIMEOUT) as response:
            status: Any = response.status
    except (OSError, ValueError) as exc:  # URLError, HTTPError (non-2xx, 3xx), timeouts, refused connections
        log.warning("audit: witness POST failed", extra={"error": type(exc).__name__})
        return False
    return 200 <= int(status) < 300


def audit_restore_point(*, actor: str, reason: str) -> Checkpoint:
    """Record that the database was rewound on purpose (a restore): later checks start from here."""
    if not reason.strip():
        raise DomainError("a restore point needs a reason (what was restored, from when)")
    return audit_checkpoint(kind="restore", actor=actor, reason=reason.strip())
