"""The CounterStore contract, run against every store (SQLite always, Redis when REDIS_URL is set)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from authserver import counters
from authserver.counters import Batch, CountersUnavailable, Hit, Tally
from authserver.counters.redis_store import RedisStore
from authserver.counters.sqlite_store import SQLiteStore

T0 = 1_700_000_040.0  # a whole minute (and a whole 60 s window), far from any clock edge
WITH_LATEST = Tally(counts="tally_counts", latest="tally_latest")
WITH_PAIRS = Tally(counts="other_counts", pairs="other_pairs")


# -- Hits: running totals and fixed windows ---------------------------------------------------------
def test_total_starts_from_the_baseline_once(store):
    assert store.total("k") is None
    assert [store.consume("k", baseline=5, period=None, now=T0).total for _ in range(2)] == [6, 7]
    assert store.consume("k", baseline=100, period=None, now=T0).total == 8, "a later baseline is ignored"
    assert store.total("k") == 8


@pytest.mark.parametrize(("offsets", "counts", "resets"), [
    ((0, 1, 59.999), [1, 2, 3], [61, 61, 61]),  # the hit of bucket [T0, T0 + 1) counts until T0 + 61
    ((59.999, 60), [1, 2], [120, 120]),  # a clock boundary starts nothing: both stay counted
    ((0, 60, 61), [1, 2, 2], [61, 61, 121]),  # T0 + 61: the first hit has left
    ((0, 180), [1, 1], [61, 241]),  # an idle gap: nothing carried over
])
def test_rate_windows_slide(store, offsets, counts, resets):
    hits = [store.consume("rl", baseline=None, period=60, now=T0 + dt) for dt in offsets]
    assert [h.window_count for h in hits] == counts
    assert [h.window_reset for h in hits] == [T0 + r for r in resets]
    assert all(h.total is None for h in hits), "no baseline: no running total"


def test_window_count_reads_without_counting(store):
    for _ in range(3):
        store.consume("w", baseline=None, period=60, now=T0 + 10)
    assert store.window_count("w", period=60, now=T0 + 59) == 3
    assert store.window_count("w", period=60, now=T0 + 59) == 3
    assert store.window_count("w", period=60, now=T0 + 70) == 3, "still inside [now - 60, now]"
    assert store.window_count("w", period=60, now=T0 + 71) == 0, "left the window"
    assert store.window_count("never", period=60, now=T0) == 0


def test_total_and_window_move_together(store):
    assert store.consume("both", baseline=10, period=3600, now=T0) == Hit(11, 1, int(T0) + 60 + 3600)
    assert store.consume("nothing", baseline=None, period=None, now=T0) == Hit(None, None, None)


def test_concurrent_hits_from_threads_sum_exactly(store):
    threads, each = 8, 40
    barrier = threading.Barrier(threads)

    def hammer() -> None:
        barrier.wait()
        for _ in range(each):
            store.consume("busy", baseline=0, period=60, now=T0 + 1)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.total("busy") == threads * each
    assert store.window_count("busy", period=60, now=T0 + 1) == threads * each


# -- Tallies -----------------------------------------------------------------------------------------
def test_drain_returns_each_count_once(store):
    store.add(WITH_LATEST, Batch(counts={("a", 0): 2, ("b", 60): 1}, latest={"a": (T0, "192.0.2.1")}))
    store.add(WITH_LATEST, Batch(counts={("a", 0): 3}, latest={"a": (T0 + 5, "192.0.2.2")}))
    drained = store.drain(WITH_LATEST)
    assert drained.counts == {("a", 0): 5, ("b", 60): 1}
    assert drained.latest == {"a": (T0 + 5, "192.0.2.2")}, "the newest use wins"
    assert not store.drain(WITH_LATEST), "drained once"
    store.add(WITH_LATEST, Batch(counts={("a", 0): 1}))
    assert store.drain(WITH_LATEST).counts == {("a", 0): 1}, "counts after a drain start from zero"


def test_pairs_are_a_set_and_tallies_are_separate(store):
    store.add(WITH_PAIRS, Batch(counts={("key:1", 60): 1}, pairs={("1", "net-a"), ("1", "net-b")}))
    store.add(WITH_PAIRS, Batch(pairs={("1", "net-a")}))
    store.add(WITH_LATEST, Batch(counts={("x", 0): 1}))
    drained = store.drain(WITH_PAIRS)
    assert drained == Batch(counts={("key:1", 60): 1}, pairs={("1", "net-a"), ("1", "net-b")})
    assert store.drain(WITH_LATEST).counts == {("x", 0): 1}


def test_names_with_separators_survive_the_round_trip(store):
    batch = Batch(counts={("invalid:2001:db8::/64", 60): 4}, latest={"k": (T0, "")}, pairs={("k", "a|b")})
    store.add(Tally(counts="sep_counts", latest="sep_latest", pairs="sep_pairs"), batch)
    assert store.drain(Tally(counts="sep_counts", latest="sep_latest", pairs="sep_pairs")) == batch


def test_drain_of_an_unknown_tally_is_empty(store):
    assert store.drain(Tally(counts="nothing_here")) == Batch()


# -- Published limits ----------------------------------------------------------------------------------
def test_published_limits_round_trip(store):
    assert store.get_limit("client:a") is None
    store.set_limits({"client:a": 120, "key:b": 7})
    assert (store.get_limit("client:a"), store.get_limit("key:b")) == (120, 7)
    store.set_limits({"client:a": None, "key:b": 8})
    assert (store.get_limit("client:a"), store.get_limit("key:b")) == (None, 8)


def test_wipe_forgets_everything(store):
    store.consume("k", baseline=3, period=60, now=T0)
    store.add(WITH_PAIRS, Batch(counts={("s", 0): 1}, pairs={("a", "b")}))
    store.set_limits({"s": 1})
    store.wipe([WITH_PAIRS])
    assert store.total("k") is None
    assert store.window_count("k", period=60, now=T0) == 0
    assert not store.drain(WITH_PAIRS)
    assert store.get_limit("s") is None


# -- Failures and formats ------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda s: s.consume("k", baseline=0, period=60, now=T0),
    lambda s: s.window_count("k", period=60, now=T0),
], ids=["consume", "window_count"])
def test_an_unreachable_redis_is_unavailable(call: Callable[[RedisStore], object]):
    with pytest.raises(CountersUnavailable):
        call(RedisStore("redis://127.0.0.1:1/0"))  # nothing listens on port 1


@pytest.mark.parametrize("call", [
    lambda s: s.consume("k", baseline=0, period=60, now=T0),
    lambda s: s.add(WITH_LATEST, Batch(counts={("a", 0): 1})),
], ids=["consume", "add"])
def test_a_locked_sqlite_file_is_unavailable(tmp_path: Path, call: Callable[[SQLiteStore], object]):
    store = SQLiteStore(tmp_path / "c.sqlite3")
    store.add(WITH_LATEST, Batch())  # the tally's tables exist
    store._connect().execute("PRAGMA busy_timeout = 0")
    holder = sqlite3.connect(tmp_path / "c.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with pytest.raises(CountersUnavailable):
            call(store)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("name", ["", "Usage", "usage; DROP TABLE quota", "a-b", "1st", "usage*"])
def test_tally_names_are_plain_words(name: str):
    with pytest.raises(ValueError):
        Tally(counts=name)
    with pytest.raises(ValueError):
        Tally(counts="ok", latest=name or "x y")


def test_an_sqlite_file_from_the_single_module_store_keeps_its_counts(tmp_path: Path):
    path = tmp_path / "counters.sqlite3"
    with sqlite3.connect(path) as db:  # the schema earlier releases wrote
        db.executescript("""
            CREATE TABLE usage (key_id TEXT, hour INTEGER, n INTEGER, PRIMARY KEY (key_id, hour));
            CREATE TABLE traffic (series TEXT, minute INTEGER, n INTEGER, PRIMARY KEY (series, minute));
            CREATE TABLE keynets (key_id TEXT, network TEXT, PRIMARY KEY (key_id, network));
            CREATE TABLE quota (key_id TEXT PRIMARY KEY, used INTEGER);
            INSERT INTO usage VALUES ('k1', 3600, 4);
            INSERT INTO traffic VALUES ('key:k1', 60, 2);
            INSERT INTO keynets VALUES ('k1', 'net');
            INSERT INTO quota VALUES ('k1', 9);
        """)
    db.close()
    store = SQLiteStore(path)
    store.add(Tally(counts="usage", latest="lastused"), Batch(counts={("k1", 3600): 1}))
    assert store.drain(Tally(counts="usage", latest="lastused")).counts == {("k1", 3600): 5}
    traffic = store.drain(Tally(counts="traffic", pairs="keynets"))
    assert (traffic.counts, traffic.pairs) == ({("key:k1", 60): 2}, {("k1", "net")})
    assert store.consume("k1", baseline=0, period=None, now=T0).total == 10


def test_backend_follows_the_settings(settings, tmp_path: Path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    counters.reset_for_tests()
    store = counters.backend()
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "counters.sqlite3"
    assert counters.backend() is store, "made once"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    counters.reset_for_tests()
    assert isinstance(counters.backend(), RedisStore)
    counters.reset_for_tests()
