"""Revocation: the one owner of cached verification answers and of their invalidation.

Web workers keep verification answers in memory (live access tokens, API keys, resource-server
authentications, clients at the token endpoint, and digests known to be unusable). An answer is
served only while all of these hold:

* it is younger than ``TTL`` and its credential has not expired (the entry's deadline is the
  earlier of the two);
* it was stored under the revocation *generation* this process still trusts: every revocation
  and every change a cached answer depends on bumps a generation shared by all processes
  (:mod:`authserver.revocation.store`), and each process re-reads it at most every
  ``CHECK_INTERVAL`` seconds, so within that interval every worker drops every cached answer;
* the generation and the database are both known to be reachable now: the endpoints must answer
  503 when the database is down (fail closed), whether or not the answer is in memory.

A request takes one :class:`RequestView` (:func:`request_view`) and reads every cache through it,
so one request sees one consistent decision. A miss reads :func:`current` *before* it queries the
database and stores its row under that value: a revocation committed meanwhile has bumped the
generation past it, and the row is never served.

Everything that must invalidate calls :func:`invalidate` (docs/architecture.md, "Revocation").
The hot path lives in this one module on purpose: a cached introspection enters it once.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from authserver.revocation import feed
from authserver.revocation.feed import Revoked
from authserver.revocation.store import GenerationUnavailable, SharedGeneration

__all__ = [
    "CACHES", "CHECK_INTERVAL", "TTL", "GenerationUnavailable", "RequestView", "Revoked", "VerificationCache", "bump",
    "clear_caches", "current", "invalidate", "request_view",
]

log = logging.getLogger("authserver.revocation")

TTL = 30.0
CHECK_INTERVAL = 0.1
RETRY_MAX_SECONDS = 5.0


class VerificationCache:
    """A bounded LRU of answers, each valid until its deadline and only under its generation."""

    def __init__(self, maxsize: int = 50_000, ttl: float = TTL, clock: Callable[[], float] = time.time) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[str, tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()  # web workers run threads

    def get(self, key: str, generation: int | None) -> Any | None:
        """The entry for ``key`` if it was stored under ``generation`` and is still within its deadline."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_generation, deadline, value = entry
        with self._lock:
            if generation is None or stored_generation != generation or deadline <= self.clock():
                self._entries.pop(key, None)
                return None
            if key in self._entries:
                self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any, *, expires_at: float, generation: int | None) -> None:
        """Store ``value`` until ``expires_at`` (the credential's end) or ``TTL``, whichever is first,
        under the generation read *before* the database was queried (None: store nothing)."""
        if generation is None:
            return
        with self._lock:
            self._entries[key] = (generation, min(self.clock() + self.ttl, expires_at), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


access_tokens = VerificationCache()
api_keys = VerificationCache()
# Resource servers authenticated by the digest of the credentials they presented: only successes.
resource_servers = VerificationCache(maxsize=1_000)
# Clients at the token endpoint by client_id: their row and allowed scope names (not a credential).
clients = VerificationCache(maxsize=10_000)
# Digests of access tokens and API keys known to be unusable (the value says why, for counting).
# A separate cache: a flood of made-up credentials can only evict other such entries, never a
# live one; and nothing unusable becomes usable again without a generation bump (a suspended
# key's resumption bumps it), since no new credential can have the digest of an older one.
unusable = VerificationCache(maxsize=50_000)
CACHES = (access_tokens, api_keys, resource_servers, clients, unusable)


@dataclass(frozen=True, slots=True)
class RequestView:
    """What one request may take from the caches: entries of ``generation``, or none (None)."""

    generation: int | None

    def get(self, cache: VerificationCache, key: str) -> Any | None:
        return cache.get(key, self.generation)


_shared = SharedGeneration()
_state_lock = threading.Lock()
_state: dict[str, Any] = {"generation": -1, "checked": -1e9, "healthy": False}
# Changes this process committed whose bump after commit has not succeeded yet (a retry thread
# keeps trying): while any is left, this process trusts nothing cached.
_unclosed: set[str] = set()
_retrying = threading.Event()


def current() -> int | None:
    """The generation this process may trust now, or None if it can't be confirmed (store
    unreadable, a change open anywhere, or a change of ours not yet fanned out after commit)."""
    now = time.monotonic()
    if now - _state["checked"] < CHECK_INTERVAL:
        return int(_state["generation"]) if _state["healthy"] else None
    with _state_lock:
        try:
            state = _shared.state()
            _state["generation"] = state.generation
            trusted = state.settled(time.time()) and not _unclosed
        except Exception:  # noqa: BLE001 - any failure to confirm means: trust nothing cached
            log.warning("revocation generation unreadable; in-process cache disabled until it recovers")
            trusted = False
        if not trusted and _state["healthy"]:
            clear_caches()
        _state["healthy"] = trusted
        _state["checked"] = now
    return int(_state["generation"]) if _state["healthy"] else None


def request_view() -> RequestView:
    """Read once per request: the generation cached answers may be served under, if any."""
    generation = current()
    if generation is None or not _database_reachable():
        return RequestView(None)
    return RequestView(generation)


def bump() -> int:
    """Invalidate every worker's cached answers. Raises :class:`GenerationUnavailable` if the
    shared store can't be written: a revocation that cannot be fanned out must not report success."""
    value = _shared.bump()
    with _state_lock:
        _state.update(generation=value, checked=time.monotonic(), healthy=not _unclosed)
    return value


def invalidate(*, settle: bool = False, quietly: bool = False, events: Iterable[Revoked] | None = None) -> None:
    """Drop every cached answer in every process: now (opening the change), and again after the
    transaction commits (closing it); and tell resource servers, with ``events`` recorded in the
    same transaction (:mod:`authserver.revocation.feed`; None: a ``generation`` event, forget
    everything; empty: nothing to tell, e.g. the caller's model already recorded it).

    Before commit: the bump makes the change visible at once, and opens a marker that keeps every
    process from caching or serving anything until it is closed (:mod:`authserver.revocation.store`).
    If it fails, :class:`GenerationUnavailable` rolls the transaction back (503): truthfully,
    nothing was committed.

    After commit: the bump that closes the marker is the one that matters: a worker that re-read the
    generation before the marker opened may have cached the pre-change row under the earlier
    number, which both bumps outdate. If this one fails the change *has* committed, so the caller
    answers success; the marker stays open (nothing cached is used anywhere until it expires), this
    process trusts no cache, and a thread retries the bump until it succeeds.

    ``settle=True`` (explicit revocations: RFC 7009, key revoke/suspend, compromise response,
    refresh-token reuse) then waits ``CHECK_INTERVAL`` before the caller can return: by then every
    worker has re-read the generation or will on its next request, so the revocation is visible
    everywhere *before* the call reports success. Rotations don't wait (the old credential's
    holder is the rotating client).

    ``quietly=True`` (changes that revoke nothing, such as a client edit or a scope change) logs
    instead of raising when the store is down: readers trust no cached answer while it is.
    """
    from django.db import transaction

    feed.record([feed.FLUSH] if events is None else events)
    # Only explicit revocations open a marker: they are what must never be served stale, and they
    # are rare. A marker of a transaction that rolls back stays open until it expires, switching
    # every cache off meanwhile; rotations and quiet changes (frequent) don't pay that.
    change = os.urandom(8).hex()
    try:
        value = _shared.bump(opening=change if settle else None)
    except GenerationUnavailable:
        if not quietly:
            raise
        log.warning("revocation generation could not be bumped")
    else:
        with _state_lock:
            _state.update(generation=value, checked=time.monotonic(), healthy=not settle and not _unclosed)
    transaction.on_commit(lambda: _close(change, settle=settle))


def _close(change: str, *, settle: bool) -> None:
    """After commit: bump and close ``change``. Never raises: the change has committed."""
    try:
        value = _shared.bump(closing=change)
    except GenerationUnavailable as exc:
        log.error("revocation committed, but the generation could not be bumped after commit; "
                  "cached answers are disabled until it is", extra={"error": str(exc)})
        with _state_lock:
            _unclosed.add(change)
            _state.update(checked=time.monotonic(), healthy=False)
            clear_caches()
        _start_retrying()
    else:
        with _state_lock:
            # Re-read at the next request: other changes may still be open.
            _state.update(generation=value, checked=-1e9, healthy=False)
    if settle:
        time.sleep(CHECK_INTERVAL)


def _start_retrying() -> None:
    if _retrying.is_set():
        return
    _retrying.set()
    threading.Thread(target=_retry_closing, name="revocation-retry", daemon=True).start()


def _close_again(change: str) -> bool:
    try:
        value = _shared.bump(closing=change)
    except GenerationUnavailable:
        return False
    with _state_lock:
        _unclosed.discard(change)
        _state.update(generation=value, checked=-1e9, healthy=False)
    return True


def _retry_closing() -> None:
    """Close every change whose bump after commit failed, backing off up to RETRY_MAX_SECONDS."""
    delay = 0.1
    try:
        while _unclosed:
            time.sleep(delay)
            for change in list(_unclosed):
                if not _close_again(change):
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    break
                log.warning("revocation generation bumped after an earlier failure; caches back in use")
    finally:
        _retrying.clear()
        if _unclosed:  # a change added as this thread was leaving
            _start_retrying()


_db_local = threading.local()


def _database_reachable() -> bool:
    """Is this thread's database connection usable, as far as can be told without a round trip?

    A non-blocking look at the connection's socket (an idle connection has nothing to read unless
    the server closed it) on every request, and a ``SELECT 1`` at most every ``CHECK_INTERVAL``.
    """
    from django.db import connection

    raw = connection.connection
    fileno = getattr(raw, "fileno", None)
    if raw is not None and fileno is not None:
        try:
            readable, _, _ = select.select([fileno()], [], [], 0)
        except Exception:  # noqa: BLE001 - a closed socket, or psycopg's "the connection is closed": not usable
            readable = [True]
        if readable:
            _db_local.checked, _db_local.ok, _db_local.raw = time.monotonic(), False, None
            return False
    now = time.monotonic()
    # A recent answer vouches only for the connection it was about. A thread whose connection was
    # closed since (Django closes it after a database error) or never opened must check again:
    # otherwise the request right after a failed one would trust the "ok" from before the failure.
    if now - getattr(_db_local, "checked", -1e9) < CHECK_INTERVAL:
        if not _db_local.ok:
            return False  # a recent failure: trust nothing cached (fail closed), don't retry yet
        if raw is not None and _db_local.raw is raw:
            return True
    try:
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        ok = True
    except Exception:  # noqa: BLE001 - unreachable, whatever the reason: trust nothing cached
        ok = False
    _db_local.checked, _db_local.ok, _db_local.raw = now, ok, connection.connection if ok else None
    return ok


def clear_caches() -> None:
    for cache in CACHES:
        cache.clear()


def reset_for_tests() -> None:
    """Forget this process's view of the generation, the database check and every cached answer."""
    with _state_lock:
        _state.update(generation=-1, checked=-1e9, healthy=False)
        _unclosed.clear()
    _db_local.__dict__.clear()
    _shared.clear_pending_for_tests()
    _shared.forget_connections()
    clear_caches()


def reset_database_check_for_tests() -> None:
    _db_local.__dict__.clear()
