"""API-key usage, quotas and per-key rate limits, counted in the counter store (never the database).

* usage (requests per key and hour, last use and address): buffered in memory and pushed to the
  store every second (:mod:`authserver.counters.buffer`); :func:`keys.jobs.usage_roll_up` drains it
  into ``ApiKeyUsage`` rows and the key's ``uses``/``last_used`` fields. Losing a few counts when a
  process dies is acceptable: it decides nothing (fail open);
  The roll-up takes counts out of the store only once the database has them, each exactly once
  (:func:`usage_stage`, :func:`usage_pending`, :func:`usage_settle`);
* quotas and rate limits: counted synchronously, only for keys that have them, because they decide
  access; a quota inside blocks leased from the database (:mod:`keys.quota`), a rate limit in its
  window. If the store can't count, :exc:`CountersUnavailable` reaches the caller, which fails
  closed (503, or an inactive answer).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from authserver import counters
from keys.quota import quota_use

log = logging.getLogger("authserver.counters")

# Requests per (key id, hour), and each key's latest (time, address).
USAGE = counters.Tally(counts="usage", latest="lastused")
_buffer = counters.buffered(USAGE)


@dataclass(frozen=True)
class Limits:
    quota_remaining: int | None
    rate_limit_remaining: int | None
    rate_limit_reset: int | None  # unix time the current window ends

    @property
    def out_of_quota(self) -> bool:
        return self.quota_remaining is not None and self.quota_remaining < 0

    @property
    def rate_limited(self) -> bool:
        return self.rate_limit_remaining is not None and self.rate_limit_remaining < 0


def _hour(ts: float) -> int:
    return int(ts // 3600 * 3600)


def record_use(key_id: str, ip: str | None, *, now: float | None = None) -> None:
    """Count one verified use (in memory; flushed within a second). Never raises."""
    try:
        now = time.time() if now is None else now
        with _buffer.adding() as batch:
            batch.count(key_id, _hour(now))
            batch.latest[key_id] = (now, ip or "")
    except Exception:  # noqa: BLE001 - a side effect
        log.warning("usage counter unavailable; one use not counted", extra={"key_id": key_id})


def flush_usage() -> None:
    """Push this process's buffered usage to the shared store now."""
    _buffer.flush()


def drain_usage() -> tuple[dict[tuple[str, int], int], dict[str, tuple[float, str]]]:
    """Take every counted use out of the store (this process's buffer first):
    ``(key id, hour) -> requests`` and ``key id -> (last use, address)``."""
    batch = counters.drain(USAGE)
    return batch.counts, batch.latest


def usage_stage() -> None:
    """Move every counted use (this process's buffer first) into a new pending batch in the store."""
    counters.stage(USAGE)


def usage_pending() -> dict[str, counters.Batch]:
    """The pending usage batches by id, oldest first: ``counts`` per (key id, hour), ``latest`` per key id."""
    return counters.pending(USAGE)


def usage_settle(batch_id: str) -> None:
    """Forget a pending batch once the database has recorded it."""
    counters.settle(USAGE, batch_id)


def consume(key_id: str, *, quota: int | None, rate_limit: int | None, period: int | None,
            now: float | None = None) -> Limits:
    """Count one use against the key's quota and rate limit. Raises CountersUnavailable.

    The quota is counted inside blocks leased from the database (keys.quota): a counter the store
    lost (a Redis restart, a deleted file) restarts from the leased total, never from a lagging count.
    """
    if quota is None and rate_limit is None:
        return Limits(None, None, None)
    used = quota_use(key_id, quota=quota) if quota is not None else None
    windowed = rate_limit is not None and bool(period)
    hit = counters.consume(key_id, period=period, limit=rate_limit, now=now) if windowed else None
    return Limits(
        quota - used if quota is not None and used is not None else None,
        rate_limit - hit.window_count if rate_limit is not None and hit and hit.window_count is not None else None,
        hit.window_reset if hit else None,
    )
