"""The counter store: counts and published limits off the database's write path (platform layer).

Verification never writes the database (docs/decisions/0005-introspection-hot-path.md); what it
must count goes here. The store is Redis when ``REDIS_URL`` is set, otherwise an SQLite file in
the data directory, shared by every local process (embedded deployments). What the counts mean belongs to their owners:
API-key usage and quotas to :mod:`keys.usage`, per-minute traffic to
:mod:`authserver.anomaly.traffic`, request rate limits to :mod:`authserver.ratelimit`.

The effective limits the anomaly job learns are kept here as data (:func:`publish_limits`,
:func:`effective_limit`): the rate limiter reads them without importing the policy that computed
them.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, TypeVar

from django.conf import settings

from authserver.counters.buffer import Buffer
from authserver.counters.sqlite_store import SQLiteStore
from authserver.counters.store import Batch, CounterStore, CountersUnavailable, Hit, QuotaTake, Tally, WindowHit

if TYPE_CHECKING:
    from authserver.counters.redis_store import RedisStore

__all__ = [
    "Batch", "Buffer", "CounterStore", "CountersUnavailable", "Hit", "QuotaTake", "Tally", "WindowHit",
    "applicable_limit", "backend", "buffered", "consume", "drain", "effective_limit", "pending", "publish_limits",
    "quota_grant", "quota_take", "reset_for_tests", "settle", "stage", "window_buckets", "window_count", "windows",
    "wipe_for_tests",
]

log = logging.getLogger("authserver.counters")

_backend: CounterStore | None = None
_backend_lock = threading.Lock()
_buffers: dict[Tally, Buffer] = {}
_buffers_lock = threading.Lock()


def backend() -> CounterStore:
    """The configured store, made on first use."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                if settings.REDIS_URL:
                    # Imported here: ``import redis`` costs about 0.3 s of CPU, which a process
                    # on the embedded defaults (and the command line) never needs.
                    from authserver.counters.redis_store import RedisStore

                    _backend = RedisStore(settings.REDIS_URL)
                else:
                    _backend = SQLiteStore(Path(settings.DATA_DIR) / "counters.sqlite3")
    return _backend


def _redis_failed(store: CounterStore) -> TypeGuard[RedisStore]:
    # A store can only be a RedisStore once its module is loaded (by backend(), when configured).
    module = sys.modules.get("authserver.counters.redis_store")
    return module is not None and isinstance(store, module.RedisStore) and store.failed_at is not None


# -- Tallies: buffered in memory, pushed every second, drained by a job ----------------------------
def buffered(tally: Tally) -> Buffer:
    """This process's buffer for ``tally`` (one per tally, flushed to the configured store)."""
    with _buffers_lock:
        if tally not in _buffers:
            _buffers[tally] = Buffer(tally, backend)
        return _buffers[tally]


def drain(tally: Tally) -> Batch:
    """Take everything counted for ``tally`` out of the store (this process's buffer first)."""
    buffered(tally).flush()
    return backend().drain(tally)


# Exactly once: stage (the store moves the tally to a pending batch), record each pending batch in
# the database together with its id, then settle it. A crash between any two steps leaves the
# batch pending, and the next run finishes it; the recorded id makes a second recording a no-op.
def stage(tally: Tally) -> None:
    """Move everything counted for ``tally`` (this process's buffer first) into a new pending batch."""
    buffered(tally).flush()
    backend().stage(tally)


def pending(tally: Tally) -> dict[str, Batch]:
    """The pending batches of ``tally`` by id, oldest first."""
    return backend().pending(tally)


def settle(tally: Tally, batch_id: str) -> None:
    """Forget a pending batch its owner has recorded."""
    backend().settle(tally, batch_id)


# -- Hits: synchronous, because they decide access -------------------------------------------------
_T = TypeVar("_T")


def _deciding(call: Callable[[], _T]) -> _T:
    """Run a store call whose answer decides access: any store failure is CountersUnavailable (the
    caller decides whether to fail closed)."""
    try:
        return call()
    except CountersUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any store failure means: can't decide
        raise CountersUnavailable(str(exc)) from exc


def consume(name: str, *, baseline: int | None = None, period: int | None = None, limit: int | None = None,
            now: float | None = None) -> Hit:
    """Count one hit of ``name`` on its running total (started at ``baseline``) and/or its sliding
    ``period``-second window (recorded only while under ``limit``: store.sliding). Raises
    CountersUnavailable: the caller decides whether to fail closed."""
    at = time.time() if now is None else now
    return _deciding(lambda: backend().consume(name, baseline=baseline, period=period, now=at, limit=limit))


def windows(hits: Sequence[WindowHit], *, now: float | None = None) -> list[Hit]:
    """Count and/or read several sliding windows in one round trip (CounterStore.windows): the
    checks one request makes before any work. Raises CountersUnavailable."""
    at = time.time() if now is None else now
    return _deciding(lambda: backend().windows(hits, now=at))


def quota_take(name: str, *, quota: int) -> QuotaTake:
    """Count one use of ``name`` inside its leased quota blocks (CounterStore.quota_take).

    Raises CountersUnavailable."""
    return _deciding(lambda: backend().quota_take(name, quota=quota))


def quota_grant(name: str, *, nonce: str, start: int, leased: int) -> bool:
    """Record a lease taken from the database (CounterStore.quota_grant). Raises CountersUnavailable."""
    return _deciding(lambda: backend().quota_grant(name, nonce=nonce, start=start, leased=leased))


def window_count(name: str, period: int, *, now: float | None = None) -> int:
    """How many hits the sliding window of ``name`` has, without counting one. Raises CountersUnavailable."""
    return _deciding(lambda: backend().window_count(name, period=period, now=time.time() if now is None else now))


def window_buckets(name: str, period: int, *, now: float | None = None) -> dict[int, int]:
    """The live buckets of ``name``'s sliding window, without counting. Raises CountersUnavailable."""
    return _deciding(lambda: backend().window_buckets(name, period=period, now=time.time() if now is None else now))


# -- Published limits: the anomaly job writes them, the rate limiter reads them ---------------------
# ``effective_limit`` is on hot paths: it answers from an in-process cache refreshed from the store
# at most every ``ANOMALY_LIMIT_CACHE_SECONDS``; never a database query, and never an error.
# subject -> (monotonic deadline, per-minute limit or None). Hot paths may read a fresh entry
# directly (a dict lookup: the introspection path enters no module for it) and call
# effective_limit() when there is none; only effective_limit() and publish_limits() write it.
limit_cache: dict[str, tuple[float, int | None]] = {}
_limit_lock = threading.Lock()


def applicable_limit(published: int | None, *, operator_set: bool) -> int | None:
    """The per-minute limit a published value imposes on a credential, or None.

    Published values are signed: a *binding* limit (negative: an anomaly's action or a limit pinned
    in the admin) always applies; a *learned* one (positive) only where the operator set no limit of
    their own (``operator_set``): explicit operator limits win over learned ones (issue 12, item 15).
    The limiter applies the same rule inline (authserver.ratelimit.limiter._adaptive_limit: the hot
    path enters no module for it).
    """
    if published is None or (published > 0 and operator_set):
        return None
    return abs(published)


def publish_limits(limits: Mapping[str, int | None]) -> None:
    """Store effective per-minute limits by subject (None removes one; negative: binding, see
    :func:`applicable_limit`). Raises on store errors."""
    if limits:
        backend().set_limits(limits)
    with _limit_lock:
        for subject in limits:
            limit_cache.pop(subject, None)


def effective_limit(subject: str) -> int | None:
    """The published per-minute limit of ``subject`` (None: none), cached in-process. Never raises.

    While the store is unreachable there is no learned limit, at once: what the anomaly job
    published is data in the store, and applying a cached copy would make a key that is limited
    only by it need the store to count (503) instead of being verified under its own static
    limits (README, "Rate limits"). After a failure, the next lookup bypasses the cache and is the
    probe that finds the store back.
    """
    now = time.monotonic()
    store = backend()
    if _redis_failed(store):
        if store.down():
            return None
        try:
            value = store.get_limit(subject)
        except Exception:  # noqa: BLE001 - still unreachable: no learned limit
            return None
        limit_cache[subject] = (now + float(settings.ANOMALY_LIMIT_CACHE_SECONDS), value)
        return value
    cached = limit_cache.get(subject)
    if cached is not None and cached[0] > now:
        return cached[1]
    ttl = float(settings.ANOMALY_LIMIT_CACHE_SECONDS)
    try:
        value = store.get_limit(subject)
    except Exception:  # noqa: BLE001 - no adaptive limit rather than no answer
        log.warning("effective limits unavailable; static limits apply")
        return None  # not cached: the lookup after the store is back finds the limit
    if ttl > 0:
        if len(limit_cache) > 100_000:
            limit_cache.clear()
        limit_cache[subject] = (now + ttl, value)
    return value


# -- Tests ------------------------------------------------------------------------------------------
def reset_for_tests() -> None:
    """Forget this process's buffers, cached limits and store (settings may have changed)."""
    global _backend
    for buffer in list(_buffers.values()):
        buffer.clear()  # the flush thread must not write a previous test's counts later
    with _limit_lock:
        limit_cache.clear()
    _backend = None


def wipe_for_tests() -> None:
    """Forget every count (tallies, totals, rate windows) and limit in whichever store is configured."""
    backend().wipe(list(_buffers))
