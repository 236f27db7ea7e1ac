"""Sliding windows counted and read in one round trip (CounterStore.windows, CounterStore.consume).

The Redis script computes each window's count and reset itself (a port of
authserver.counters.store.sliding, so the reply is a few integers): on generated bucket sets, both
stores must answer exactly what ``sliding`` computes from the buckets in Python.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver import counters
from authserver.counters.redis_store import PREFIX, RedisStore
from authserver.counters.store import Hit, WindowHit, buckets, sliding

PERIODS = [1, 7, 60, 300, 3600]


def _seed(store: counters.CounterStore, name: str, seeded: dict[int, int]) -> None:
    if isinstance(store, RedisStore):
        store.redis.delete(f"{PREFIX}sw:{name}")
        if seeded:
            store.redis.hset(f"{PREFIX}sw:{name}", mapping=seeded)  # type: ignore[arg-type]
    else:
        with store._write() as db:  # type: ignore[attr-defined]
            db.execute("DELETE FROM slide WHERE key_id = ?", (name,))
            db.executemany("INSERT INTO slide VALUES (?, ?, ?)", [(name, b, n) for b, n in seeded.items()])


def _expected(seeded: dict[int, int], *, now: float, period: int, limit: int | None, record: bool) -> Hit:
    current, oldest = buckets(now, period)
    live = {b: n for b, n in seeded.items() if oldest <= b <= current}
    recorded = record and (limit is None or sum(live.values()) < limit)
    if recorded:
        live[current] = live.get(current, 0) + 1
    count, reset = sliding(live, now=now, period=period, limit=limit)
    return Hit(None, count + 1 if record and not recorded else count, reset)


windows = st.fixed_dictionaries({
    "period": st.sampled_from(PERIODS),
    "offsets": st.dictionaries(st.integers(-70, 3), st.integers(1, 9), max_size=70),
    "limit": st.none() | st.integers(1, 400),
    "record": st.booleans(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=st.floats(1.7e9, 1.9e9), cases=st.lists(windows, min_size=1, max_size=4))
def test_windows_answer_what_sliding_computes(store, now, cases):
    hits, expected, seeded_by_name = [], [], {}
    current_of = {}
    for i, case in enumerate(cases):
        name = f"gen{i}"
        current, _ = buckets(now, case["period"])
        seeded = {current + offset: n for offset, n in case["offsets"].items()}
        _seed(store, name, seeded)
        seeded_by_name[name], current_of[name] = seeded, current
        hits.append(WindowHit(name, case["period"], case["limit"], record=case["record"]))
        expected.append(_expected(seeded, now=now, period=case["period"], limit=case["limit"], record=case["record"]))
    assert store.windows(hits, now=now) == expected
    for hit in hits:
        if not hit.record:  # a read changes nothing
            current, oldest = buckets(now, hit.period)
            live = {b: n for b, n in seeded_by_name[hit.name].items() if oldest <= b <= current}
            assert store.window_buckets(hit.name, period=hit.period, now=now) == live


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=st.floats(1.7e9, 1.9e9), case=windows)
def test_consume_answers_what_sliding_computes(store, now, case):
    current, _ = buckets(now, case["period"])
    seeded = {current + offset: n for offset, n in case["offsets"].items()}
    _seed(store, "one", seeded)
    expected = _expected(seeded, now=now, period=case["period"], limit=case["limit"], record=True)
    assert store.consume("one", baseline=None, period=case["period"], now=now, limit=case["limit"]) == expected


def test_consume_keeps_the_total_and_the_window_together(store):
    now = 1_800_000_000.5
    assert store.consume("both", baseline=41, period=60, now=now, limit=2) == Hit(42, 1, 1_800_000_061)
    assert store.consume("both", baseline=0, period=60, now=now, limit=2) == Hit(43, 2, 1_800_000_061)
    assert store.consume("both", baseline=0, period=60, now=now, limit=2) == Hit(44, 3, 1_800_000_061)
    assert store.consume("both", baseline=0, period=None, now=now) == Hit(45, None, None)
    assert store.windows([WindowHit("both", 60, 2, record=False)], now=now) == [Hit(None, 2, 1_800_000_061)]


def test_a_read_of_an_empty_window_creates_nothing(store):
    now = 1_800_000_000.0
    assert store.windows([WindowHit("nobody", 300, 20, record=False)], now=now) == [Hit(None, 0, 1_800_000_300)]
    assert store.window_buckets("nobody", period=300, now=now) == {}
    if isinstance(store, RedisStore):
        assert not store.redis.exists(f"{PREFIX}sw:nobody")
