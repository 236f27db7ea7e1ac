"""``GET /oauth/revocations``: the revocation events as server-sent events (contract C7,
docs/revocation-stream.md). HTTP in, a stream out; the events are recorded by
:mod:`authserver.revocation.feed` in the transactions that revoke.

The caller authenticates as a resource server exactly as at introspection (HTTP Basic, the same
failure budgets, the same rate-limit store). Everything that can fail (authentication, the
database) is decided before the first byte, so a stream that opens is a 200 and a database that is
down at connect time is a 503 (authserver.handlers). The response then polls the event table every
``POLL_SECONDS`` (an indexed range read on the primary key) from its cursor, sends what is new,
a heartbeat comment when idle, and ends after ``REVOCATIONS_MAX_SECONDS``; the consumer reconnects
with ``Last-Event-ID`` and misses nothing within the retention.

A stream holds a web thread for its whole life, so each process serves at most
``REVOCATIONS_MAX_STREAMS`` at once (beyond it: 503 with ``Retry-After``); the web server runs
more threads than that (authserver/oauth/management/commands/serve.py, docker-entrypoint.sh),
so ordinary requests always find one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from authserver import revocation
from authserver.audit.context import request_personal
from authserver.audit.services import audit_record
from authserver.handlers import json_error
from authserver.introspection.endpoint import resource_server_caller
from authserver.ratelimit.limiter import enforce, note
from authserver.revocation.models import RevocationEvent

log = logging.getLogger("authserver.revocation.stream")

POLL_SECONDS = 0.2  # C7: an event reaches open streams within 0.5 s of its commit
BATCH = 500
RETRY_MILLISECONDS = 1000
BUSY_RETRY_AFTER = "2"
_LAST_EVENT_ID_DIGITS = 19  # a BigAutoField

_lock = threading.Lock()
_open = [0]  # streams this process is serving now


def open_streams() -> int:
    return _open[0]


class _Slot:
    """One of the process's stream slots, given back exactly once (generator end or response close)."""

    def __init__(self) -> None:
        self.held = True

    def release(self) -> None:
        with _lock:
            if self.held:
                self.held = False
                _open[0] -= 1


def _take_slot() -> _Slot | None:
    with _lock:
        if _open[0] >= settings.REVOCATIONS_MAX_STREAMS:
            return None
        _open[0] += 1
    return _Slot()


def _audit_refusal(request: HttpRequest, client_id: str | None) -> None:
    """A failed resource-server authentication within the failure budget: one audit event."""
    # What it claimed to be, printable and bounded (a NUL cannot even be stored in PostgreSQL text).
    named = client_id[:100].isprintable() and "\x00" not in client_id if client_id else False
    audit_record(event="revocations.refused", outcome="failure",
                 actor=f"client:{client_id[:100]}" if client_id and named else "anonymous",
                 subject="endpoint:revocations", details={"reason": "invalid_client"},
                 personal=request_personal(request))


def resume_point(raw: str | None, first: int | None, last: int | None) -> int | None:
    """The id to replay after, or None when the consumer must start over (``reset``).

    Resumable only if nothing after it has been pruned: the prune job keeps a suffix of the table
    by id and always its newest row, so an id at or after the oldest row left, and not beyond the
    newest, loses nothing. Anything else (absent, malformed, too old, from another database) resets.
    """
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > _LAST_EVENT_ID_DIGITS:
        return None
    value = int(raw)
    if first is None or last is None or not first <= value <= last:
        return None
    return value


def frame(event_id: int, kind: str, digest: str, client_id: str, at: float) -> bytes:
    data: dict[str, Any] = {"kind": kind}
    if digest:
        data["digest"] = digest
    if client_id:
        data["client_id"] = client_id
    data["at"] = at
    return f"id: {event_id}\nevent: revocation\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream(*, cursor: int, reset: bool, slot: _Slot, clock: Any = time.monotonic) -> Iterator[bytes]:
    """The body: ``retry``, maybe ``reset``, then events from ``cursor`` on, heartbeats between.

    The first heartbeat follows the replay at once: it tells the consumer it has caught up (the kit
    serves nothing from its cache before it), then one whenever nothing was sent for a while."""
    started = last_sent = clock()
    heartbeat = float(settings.REVOCATIONS_HEARTBEAT_SECONDS)
    deadline = started + float(settings.REVOCATIONS_MAX_SECONDS)
    pause = min(POLL_SECONDS, heartbeat)
    caught_up = False
    try:
        head = f"retry: {RETRY_MILLISECONDS}\n\n"
        if reset:
            head += f"id: {cursor}\nevent: reset\ndata: {{}}\n\n"
        yield head.encode()
        while clock() < deadline:
            rows = list(RevocationEvent.objects.filter(id__gt=cursor).order_by("id")
                        .values_list("id", "kind", "digest", "client_id", "at")[:BATCH])
            now = clock()
            chunk = b"".join(frame(*row) for row in rows)
            if rows:
                cursor = rows[-1][0]
            if len(rows) < BATCH and (not caught_up or (not rows and now - last_sent >= heartbeat)):
                chunk += b": hb\n\n"
                caught_up = True
            if chunk:
                last_sent = now
                yield chunk
            if len(rows) < BATCH:  # else more are waiting: no pause
                time.sleep(pause)
    except DatabaseError as exc:
        # The consumer reconnects (and meets a 503 while the database stays down); its cache
        # falls back to its stated bound meanwhile (docs/revocation-stream.md).
        # The connection is discarded when the response closes (request_finished).
        log.warning("revocation stream ended: database unavailable", extra={"error": type(exc).__name__})
    finally:
        slot.release()


def revocations(request: HttpRequest) -> HttpResponse:
    """C7: the stream of revocation events for resource servers' caches (text/event-stream)."""
    # Authenticated exactly as at introspection (the same budgets; 401, then 429 once spent).
    caller = resource_server_caller(request, {}, revocation.request_view(), realm="revocations",
                                    refused=lambda client_id, _network: _audit_refusal(request, client_id))
    if isinstance(caller, HttpResponse):
        return caller
    note(request, enforce("revocations.rs", caller["client_id"]))
    # Read before the first byte: a database that is down answers 503 here (authserver.handlers).
    bounds = RevocationEvent.objects.aggregate(first=Min("id"), last=Max("id"))
    first, last = bounds["first"], bounds["last"]
    after = resume_point(request.META.get("HTTP_LAST_EVENT_ID"), first, last)
    slot = _take_slot()
    if slot is None:
        return json_error(503, "temporarily_unavailable", "Too many revocation streams; retry later.",
                          **{"Retry-After": BUSY_RETRY_AFTER})
    response = StreamingHttpResponse(
        stream(cursor=(last or 0) if after is None else after, reset=after is None, slot=slot),
        content_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    # A response that is closed before its body starts still gives its slot back.
    response._resource_closers.append(slot.release)  # type: ignore[attr-defined]
    return response  # type: ignore[return-value]  # streaming: the URL map's wrappers pass it through as is
