"""What every counter store does: the contract Redis and the embedded SQLite file both keep.

Three kinds of data live here, none of them in the database (verification never writes it:
docs/decisions/0005-introspection-hot-path.md):

* tallies: counts each process adds up in memory (:mod:`authserver.counters.buffer`), pushes here
  about every second, and a job drains: ``(name, bucket) -> n``, optionally each name's latest
  ``(time, text)`` and a set of ``(a, b)`` pairs. A side effect: losing a few counts is acceptable;
  A drain in two steps (:meth:`CounterStore.stage`, then :meth:`CounterStore.settle` once the
  database has the counts) lets an owner count each of them exactly once;
* hits: a running total and/or a sliding-window count per name, counted synchronously because they
  decide access (quotas, rate limits). A store that can't count raises :class:`CountersUnavailable`
  and the caller fails closed;
* quota positions: a use counted inside blocks its owner leases from the database
  (:meth:`CounterStore.quota_take`, :meth:`CounterStore.quota_grant`), so that a store that loses
  them never grants more than was leased;
* published limits: per-subject values one job computes and hot paths read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Tally names become Redis keys and SQLite table names: plain words only, so they can't inject anything.
_NAME = re.compile(r"[a-z][a-z_]*\Z")


class CountersUnavailable(Exception):
    """The counter store can't be reached: access decisions that need it must fail closed."""


@dataclass(frozen=True)
class Tally:
    """Where one owner's buffered counts live: the names of its count hash, latest values and pairs."""

    counts: str
    latest: str | None = None
    pairs: str | None = None

    def __post_init__(self) -> None:
        for name in (self.counts, self.latest, self.pairs):
            if name is not None and not _NAME.match(name):
                raise ValueError(f"tally name {name!r}: lowercase letters and underscores only")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.counts, self.latest, self.pairs) if name)


@dataclass
class Batch:
    """Counts of one tally: what a process pushes and what a drain returns."""

    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    latest: dict[str, tuple[float, str]] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)

    def count(self, name: str, bucket: int, n: int = 1) -> None:
        self.counts[(name, bucket)] = self.counts.get((name, bucket), 0) + n

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts or self.latest or self.pairs)


@dataclass(frozen=True)
class QuotaTake:
    """One use asked of a quota counter: counted at position ``used`` (over the quota when the
    lease is the whole quota and is used up), or ``lease_nonce`` set: the counter needs a lease
    (it is new, lost, or its leased blocks are used up) to be granted under that nonce."""

    used: int
    lease_nonce: str | None = None


@dataclass(frozen=True)
class Hit:
    """One counted hit: the running total and the sliding window's count, this hit included."""

    total: int | None  # None: no total kept (no baseline given)
    window_count: int | None  # None: no window (no period given); over the limit: the hit was not recorded
    window_reset: int | None  # unix time the next hit would be admitted (full), or the oldest hit leaves


@dataclass(frozen=True)
class WindowHit:
    """One sliding window of a batch (:meth:`CounterStore.windows`): a hit counted while under
    ``limit`` (``record``), or only read (is the window full?)."""

    name: str
    period: int
    limit: int | None  # None: no limit (a recorded hit is always counted)
    record: bool = True


# -- Sliding windows ---------------------------------------------------------------------------------
# Fixed windows aligned to the clock admitted about twice the limit across a boundary (issue 12,
# item 14). A window is counted instead in SUB_WINDOWS buckets of period/SUB_WINDOWS seconds, and a
# hit is admitted only if every bucket that overlaps [now - period, now] holds fewer than ``limit``
# hits: a conservative cover, so no interval of ``period`` seconds ever admits more than the limit
# (an admitted hit at t saw every admitted hit of [t - period, t]). Only admitted hits are recorded:
# a caller over its limit regains capacity as its old hits leave, instead of staying locked out by
# its own refused retries. The cost of the cover is at most one bucket (period/60) of delay.
SUB_WINDOWS = 60


def buckets(now: float, period: int) -> tuple[int, int]:
    """``(current bucket, oldest bucket still counted)`` for a hit at ``now``."""
    width = period / SUB_WINDOWS
    return int(now // width), int((now - period) // width)


def sliding(counts: Mapping[int, int], *, now: float, period: int, limit: int | None) -> tuple[int, int]:
    """``(hits counted at now, unix time the next hit is admitted or the oldest hit leaves)`` from the
    live buckets ``counts`` (bucket -> hits). A bucket b stops counting at (b + 1) * width + period."""
    width = period / SUB_WINDOWS
    _, oldest = buckets(now, period)
    live = sorted((b, n) for b, n in counts.items() if b >= oldest and n > 0)
    total = sum(n for _, n in live)
    if not live:
        return 0, math.ceil(now + period)
    running = total
    for bucket, n in live:
        running -= n
        if limit is None or total < limit or running < limit:
            return total, math.ceil((bucket + 1) * width + period)
    return total, math.ceil(now + period)  # unreachable: the last bucket leaves running at 0


class CounterStore(Protocol):
    def add(self, tally: Tally, batch: Batch) -> None:
        """Add ``batch`` to what is stored (counts add up; a name's latest keeps the newest time)."""

    def drain(self, tally: Tally) -> Batch:
        """Take everything stored for ``tally`` out: each count is returned by exactly one drain."""

    def stage(self, tally: Tally) -> None:
        """Atomically move what is stored for ``tally`` into a new pending batch (nothing if empty)."""

    def pending(self, tally: Tally) -> dict[str, Batch]:
        """The pending batches of ``tally`` by id, oldest first (ids sort by the time they were staged)."""

    def settle(self, tally: Tally, batch_id: str) -> None:
        """Forget the pending batch ``batch_id`` (its owner has recorded it). Idempotent."""

    def quota_take(self, name: str, *, quota: int) -> QuotaTake:
        """Count one use of ``name`` inside its leased blocks, atomically. Raises :class:`CountersUnavailable`.

        A counter the store does not hold (new, or lost with the store's data) starts as a
        placeholder with a fresh nonce and asks for a lease; so does one whose lease is used up
        while the lease is below ``quota``. Once the lease covers the whole quota and is used up,
        the answer is ``used`` = lease + 1, over the quota, without a lease."""

    def quota_grant(self, name: str, *, nonce: str, start: int, leased: int) -> bool:
        """Record a lease of the database's quota blocks up to ``leased`` (the database's total
        after the lease; ``start`` its total before). Only under the nonce the counter had when the
        lease was asked for (False otherwise: the counter was lost and made again meanwhile, and
        this lease, taken before that, must not start it). A placeholder starts counting at
        ``start``; a counting one only raises its lease to ``leased``, never lowers it."""

    def consume(self, name: str, *, baseline: int | None, period: int | None, now: float,
                limit: int | None = None) -> Hit:
        """Count one hit of ``name``, atomically, in one round trip.

        With ``baseline``: on its running total, which a lost counter restarts from. With ``period``:
        on its sliding ``period``-second window, recorded only if the window holds fewer than
        ``limit`` hits (None: always). Raises :class:`CountersUnavailable`.
        """

    def windows(self, hits: Sequence[WindowHit], *, now: float) -> list[Hit]:
        """Several sliding windows of one request, atomically, in one round trip: each one's
        :class:`Hit` (no total), in order. A recorded window is counted as :meth:`consume` counts
        it; a read one is left as it is, its ``window_count`` the hits it holds (not one more).
        Raises :class:`CountersUnavailable`."""

    def total(self, name: str) -> int | None:
        """The running total of ``name`` (None: never counted)."""

    def window_count(self, name: str, *, period: int, now: float) -> int:
        """Hits of ``name`` in its sliding window, without counting one. Raises :class:`CountersUnavailable`."""

    def window_buckets(self, name: str, *, period: int, now: float) -> dict[int, int]:
        """The live buckets of ``name``'s sliding window (bucket -> hits). Raises :class:`CountersUnavailable`."""

    def set_limits(self, limits: Mapping[str, int | None]) -> None:
        """Publish per-subject limits (None removes one)."""

    def get_limit(self, subject: str) -> int | None:
        """The published limit of ``subject`` (None: none)."""

    def wipe(self, tallies: Iterable[Tally]) -> None:
        """Forget everything: tallies, totals, windows and limits (tests only)."""
