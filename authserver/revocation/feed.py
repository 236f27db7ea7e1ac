"""What resource servers are told to forget: revocation events, recorded with the change.

Every invalidation (:func:`authserver.revocation.invalidate`) records events in the caller's
transaction, so an event exists exactly when its change committed (C7, docs/revocation-stream.md):

* ``access_token``, ``refresh_token``, ``api_key``: one credential, by the SHA-256 hex digest the
  database already stores (never the credential: :func:`record` refuses anything else);
* ``client``: every credential of one client (compromise response, deletion);
* ``generation``: anything else a cached answer may depend on (scopes, audiences, client
  settings): resource servers forget everything. An invalidation that names nothing records one,
  so a new way to revoke is at worst a cache flush, never a stale answer.

Ids order the stream, so they must become visible in order: on PostgreSQL a transaction-level
advisory lock taken before the insert and held until commit makes the sequence's order the
commit order (a stream that read id 11 can never afterwards see 10 appear). The lock is held
only from the insert to the commit. Refresh-token rotation revokes the old pair on every refresh,
so the token endpoint *gathers* its events (:func:`gathered`) and records them as its
transaction's last statement: refreshes serialise on the lock only for that insert and the
commit, not for the whole exchange. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection, transaction

ACCESS_TOKEN = "access_token"  # noqa: S105 - a kind of event, not a secret
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a kind of event, not a secret
API_KEY = "api_key"
CLIENT = "client"
GENERATION = "generation"
DIGEST_KINDS = frozenset({ACCESS_TOKEN, REFRESH_TOKEN, API_KEY})

# b"revfeed" read as a big-endian integer: every writer agrees on it.
ORDER_LOCK_KEY = int.from_bytes(b"revfeed", "big")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Revoked:
    """One thing resource servers must forget (see the module docstring for the kinds)."""

    kind: str
    digest: str = ""
    client_id: str = ""


FLUSH = Revoked(GENERATION)


def digests(kind: str, values: Iterable[str | None]) -> list[Revoked]:
    """One event per stored digest (``token_checksum``, ``ApiKey.digest``); blanks are skipped."""
    return [Revoked(kind, value) for value in values if value]


def client(client_id: str) -> Revoked:
    return Revoked(CLIENT, client_id=client_id)


_gathering: ContextVar[list[Revoked] | None] = ContextVar("revocation_feed_gathering", default=None)


@contextmanager
def gathered() -> Iterator[None]:
    """Inside a transaction: :func:`record` only checks and keeps its events; when the block ends
    without an exception, all of them are recorded at once, as the block's last statement (call it
    as the transaction's last block, so the order lock is held only until the commit).

    An event kept inside a savepoint that later rolled back is still recorded: resource servers
    then forget a credential that stays good and ask about it again, which is safe; an event is
    never lost.
    """
    token = _gathering.set([])
    try:
        yield
        pending = _gathering.get() or []
    finally:
        _gathering.reset(token)
    if not (connection.in_atomic_block and connection.needs_rollback):  # else nothing commits anyway
        record(pending)


def record(events: Iterable[Revoked]) -> int:
    """Insert ``events`` (deduplicated) in the caller's transaction; returns how many. Inside
    :func:`gathered`, they are kept and inserted when that block ends."""
    from authserver.revocation.models import RevocationEvent

    unique = list(dict.fromkeys(events))
    for event in unique:
        # A digest is 64 lower-case hex characters; no credential looks like that (they carry a
        # prefix), so a plaintext handed in by mistake is refused here, never stored or streamed.
        if (event.kind in DIGEST_KINDS) != bool(event.digest) or (event.digest and not _DIGEST.fullmatch(event.digest)):
            raise ValueError(f"a {event.kind} revocation event needs a SHA-256 hex digest, and only it")
        if (event.kind == CLIENT) != bool(event.client_id):
            raise ValueError(f"a {event.kind} revocation event names a client_id only for kind client")
        if event.kind not in DIGEST_KINDS | {CLIENT, GENERATION}:
            raise ValueError(f"unknown revocation event kind {event.kind!r}")
    if not unique:
        return 0
    gathering = _gathering.get()
    if gathering is not None:
        gathering.extend(unique)
        return len(unique)
    # The caller's transaction (no savepoint: a failure here fails the caller's change), or one of its own.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ORDER_LOCK_KEY])
        now = time.time()
        RevocationEvent.objects.bulk_create([RevocationEvent(kind=event.kind, digest=event.digest,
                                                             client_id=event.client_id, at=now) for event in unique])
    return len(unique)


PRUNE_BATCH = 5000


def prune(*, now: float | None = None) -> int:
    """Delete events older than ``REVOCATIONS_RETENTION_SECONDS``; returns how many (the beat job).

    What is left is always a suffix of the table by id, and never empty once an event exists (the
    newest row stays, however old): so a consumer's ``Last-Event-ID`` at or after the oldest row
    left has missed nothing, and one that is older gets ``reset`` (authserver.revocation.endpoint).
    Batches of short transactions: never a long lock on the table writers append to.
    """
    from django.conf import settings
    from django.db.models import Max

    from authserver.revocation.models import RevocationEvent

    cutoff = (time.time() if now is None else now) - settings.REVOCATIONS_RETENTION_SECONDS
    newest = RevocationEvent.objects.aggregate(newest=Max("id"))["newest"]
    through = RevocationEvent.objects.filter(at__lt=cutoff).aggregate(through=Max("id"))["through"]
    if newest is None or through is None:
        return 0
    through = min(through, newest - 1)
    deleted = 0
    while True:
        batch = list(RevocationEvent.objects.filter(id__lte=through).order_by("id")
                     .values_list("id", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        deleted += RevocationEvent.objects.filter(id__in=batch).delete()[0]
