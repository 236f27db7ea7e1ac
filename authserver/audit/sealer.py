"""The sealer: chains committed audit events, in order, after they were appended.

Appending an event (``audit_record``) is a plain INSERT so that no request ever queues behind
another one's audit write (issue 12: a held head-row lock used to stall every token issuance).
The chain is built here instead, by one sealer at a time cluster-wide, run every
``AUTHSERVER_AUDIT_SEAL_INTERVAL`` seconds by beat (authserver/audit/tasks.py) and by
``manage.py audit seal``:

* **One at a time.** PostgreSQL: a transaction-level advisory *try*-lock; a second sealer finds
  it taken and returns at once (the first one is doing the work). SQLite: the sealer's own
  ``BEGIN IMMEDIATE`` transaction (settings: ``transaction_mode``), a database-wide write lock
  held for one short batch.
* **In order, without gaps.** It takes the committed unsealed events in id order and gives each
  ``seq = last_seq + 1, + 2, ...`` and ``chain = HMAC(previous chain, canonical event)`` as
  before; the head row keeps ``last_seq`` and the last chain value. Ids commit out of order (an
  event whose transaction was slower gets the next ``seq`` when it commits), so the chain's
  order is ``seq``; ``seq`` has no gaps, so a deleted sealed event shows.
* **Never blocks an appender.** Appenders touch neither the advisory lock nor the head row; on
  PostgreSQL the sealer waits at most ``LOCK_TIMEOUT`` for a row someone else holds, then gives
  up the batch (rolled back, nothing half-sealed) and the next run tries again.
"""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from authserver.audit.models import AuditChainHead, AuditEvent
from authserver.audit.services import GENESIS, chain_value

log = logging.getLogger("authserver.audit")

# A fixed 64-bit key every sealer agrees on: b"authseal" read as a big-endian integer.
SEAL_LOCK_KEY = int.from_bytes(b"authseal", "big")
LOCK_TIMEOUT = "2s"
BATCH_SIZE = 500


class SealerBusy(Exception):
    """Another sealer holds the seal lock (it is sealing these events now)."""


def audit_seal(*, batch_size: int = BATCH_SIZE) -> int:
    """Seal every event committed so far; return how many were sealed (0 if another sealer is at it)."""
    sealed = 0
    while True:
        try:
            count = _seal_batch(batch_size=batch_size)
        except SealerBusy:
            return sealed
        sealed += count
        if count < batch_size:
            return sealed


def _seal_batch(*, batch_size: int) -> int:
    connection = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise SealerBusy
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        batch = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:batch_size])
        if not batch:
            return 0
        seq, previous = head.last_seq, head.chain or GENESIS
        rows = []
        for event in batch:
            seq += 1
            # An event whose personal data no longer decrypts was tampered with before it was
            # sealed: this raises, the batch rolls back, and sealing stops there (audit verify
            # then reports the unsealed events growing old) rather than sealing a forgery.
            previous = chain_value(previous, event)
            rows.append((seq, previous, event.id))
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        cursor.executemany(f"UPDATE {table} SET seq = %s, chain = %s WHERE id = %s AND seq IS NULL", rows)  # noqa: S608
        AuditChainHead.objects.filter(pk=1).update(last_seq=seq, chain=previous)
    log.debug("audit: sealed events", extra={"count": len(batch), "last_seq": seq})
    return len(batch)
