"""API-key quotas, counted in the counter store inside blocks leased from the database.

A quota decides access, so it is counted synchronously in the counter store (one atomic round
trip, never a database write per use: docs/decisions/0005-introspection-hot-path.md). A store can
lose its counters (Redis restarted without persistence, the embedded file deleted); a counter that
restarted from the rolled-up ``uses`` would grant again what was used since the last roll-up.
So the store only counts inside blocks the database has leased to it (``ApiKey.quota_leased``,
raised under a row lock, never past ``quota``), and a counter the store does not hold starts at
the leased total read fresh from the database. After any loss of the store:

* over-grant: none. Every use counted was inside a block the database leased, and no two
  counters ever count the same block (a lease taken before a loss can't start the counter made
  after it: the nonce check in ``CounterStore.quota_grant``);
* under-grant: what was left of the leased blocks when the store lost them, at most one block per
  key in the steady state (one more for each lease that was in flight at the moment of the loss).

A token exchange leases inside the token endpoint's transaction; an error answer still commits
it, but an exception that rolls the exchange back (the database failing mid-request) also rolls
the lease back while the store keeps counting it: only if the store then loses its data too can
that one block be granted twice.

The block is ``ceil(quota / 20)``, at least 1 and at most :data:`LEASE_BLOCK_MAX`: one database
write per block, so a key with a quota of 1,000,000 writes once every 1,000 uses.
"""

from __future__ import annotations

import math

from django.db import DatabaseError, transaction
from django.db.models import F

from authserver import counters
from keys.models import ApiKey

LEASE_BLOCK_MAX = 1000
_ATTEMPTS = 4  # take, lease, grant, take; more only when other processes raced us for the counter


def lease_block(quota: int) -> int:
    """How many uses one lease hands the counter store."""
    return max(1, min(LEASE_BLOCK_MAX, math.ceil(quota / 20)))


def api_key_quota_lease(*, key_id: str, quota: int) -> tuple[int, int]:
    """Lease the next block of the key's quota: the leased total ``(before, after)``.

    ``after == before`` when nothing is left. The total is read under the row's lock, fresh from
    the database (never from a cached row), and the quota too: a lowered quota is honoured at once.
    Raises CountersUnavailable when the database can't lease (the caller fails closed).
    """
    try:
        with transaction.atomic():
            # An UPDATE first: it takes the row's write lock on PostgreSQL and SQLite alike, so the
            # read below can't race another lease.
            if not ApiKey.objects.filter(pk=key_id).update(quota_leased=F("quota_leased")):
                return quota, quota  # the key is gone: nothing to lease
            leased, current = ApiKey.objects.filter(pk=key_id).values_list("quota_leased", "quota").get()
            limit = quota if current is None else current
            n = max(0, min(lease_block(limit), limit - leased))
            if n:
                ApiKey.objects.filter(pk=key_id).update(quota_leased=leased + n)
            return leased, leased + n
    except DatabaseError as exc:
        raise counters.CountersUnavailable(f"quota lease: {type(exc).__name__}") from exc


def quota_use(key_id: str, *, quota: int) -> int:
    """Count one use of the key's quota; its position (over ``quota``: refused). Raises CountersUnavailable."""
    exhausted_at: int | None = None
    for _ in range(_ATTEMPTS):
        take = counters.quota_take(key_id, quota=quota)
        if take.lease_nonce is None:
            return take.used
        if exhausted_at is not None:  # the database has nothing left, whatever the (cached) row said
            return max(exhausted_at, quota) + 1
        before, after = api_key_quota_lease(key_id=key_id, quota=quota)
        if counters.quota_grant(key_id, nonce=take.lease_nonce, start=before, leased=after) and after == before:
            exhausted_at = after
    raise counters.CountersUnavailable("quota: no lease could be granted")
