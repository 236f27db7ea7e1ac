"""What the owners build on the store, against every store: API-key usage and quotas
(:mod:`keys.usage`), per-minute traffic (:mod:`authserver.anomaly.traffic`) and published limits."""

from __future__ import annotations

import threading

import pytest

from authserver import counters
from authserver.anomaly import traffic
from keys import usage
from keys.models import ApiKey
from keys.services import api_key_create
from tests.factories import make_client

T0 = 1_700_000_040.0  # a whole minute
HOUR = int(T0 // 3600 * 3600)


# -- keys.usage: quota and rate limit ---------------------------------------------------------------
def limited_key(*, quota: int, leased: int = 0) -> str:
    """The id of a key with ``quota``, ``leased`` of it already leased to a counter store."""
    client, _ = make_client(name="owner")
    key, _ = api_key_create(client=client, name="limited", quota=max(quota, 1))
    ApiKey.objects.filter(pk=key.pk).update(quota=quota, quota_leased=leased)
    return str(key.pk)


@pytest.mark.parametrize(("quota", "leased", "remaining", "out"), [
    (3, 0, [2, 1, 0, -1], [False, False, False, True]),
    (3, 2, [0, -1], [False, True]),  # what was leased before (to a store that lost it) counts as used
    (0, 0, [-1], [True]),
])
def test_quota_counts_from_the_leased_total(configured, db, quota, leased, remaining, out):
    key_id = limited_key(quota=quota, leased=leased)
    limits = [usage.consume(key_id, quota=quota, rate_limit=None, period=None, now=T0) for _ in remaining]
    assert [lim.quota_remaining for lim in limits] == remaining
    assert [lim.out_of_quota for lim in limits] == out
    assert all(lim.rate_limit_remaining is None and not lim.rate_limited for lim in limits)


@pytest.mark.parametrize(("offsets", "remaining", "reset"), [
    # Sliding windows (60 buckets of 1 s): a hit at T0 counts until T0 + 61; a refused use is not recorded.
    ((0, 10, 59), [1, 0, -1], [61, 61, 61]),
    ((0, 10, 59, 60), [1, 0, -1, -1], [61, 61, 61, 61]),  # no boundary to cross: T0 is still in the window
    ((0, 10, 59, 61), [1, 0, -1, 0], [61, 61, 61, 71]),  # the oldest use left: one more admitted
])
def test_rate_limit_windows(configured, offsets, remaining, reset):
    limits = [usage.consume("k", quota=None, rate_limit=2, period=60, now=T0 + dt) for dt in offsets]
    assert [lim.rate_limit_remaining for lim in limits] == remaining
    assert [lim.rate_limited for lim in limits] == [r < 0 for r in remaining]
    assert [lim.rate_limit_reset for lim in limits] == [T0 + r for r in reset]
    assert all(lim.quota_remaining is None for lim in limits)


def test_quota_and_rate_limit_together(configured, db):
    limits = usage.consume(limited_key(quota=10, leased=4), quota=10, rate_limit=5, period=3600, now=T0)
    assert limits == usage.Limits(quota_remaining=5, rate_limit_remaining=4, rate_limit_reset=int(T0) + 60 + 3600)


def test_a_key_without_limits_never_touches_the_store(monkeypatch):
    def broken(*args, **kwargs):
        raise AssertionError("no store for an unlimited key")

    monkeypatch.setattr(counters, "backend", broken)
    assert usage.consume("k", quota=None, rate_limit=None, period=None) == usage.Limits(None, None, None)


def test_a_store_failure_is_counters_unavailable(configured, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(configured, "consume", broken)
    monkeypatch.setattr(configured, "quota_take", broken)
    with pytest.raises(counters.CountersUnavailable):
        usage.consume("k", quota=1, rate_limit=None, period=None)
    with pytest.raises(counters.CountersUnavailable):
        usage.consume("k", quota=None, rate_limit=1, period=60)
    with pytest.raises(counters.CountersUnavailable):
        counters.consume("login:alice", period=60)


# -- keys.usage: recorded uses ------------------------------------------------------------------------
def test_recorded_uses_drain_by_hour_once(configured):
    usage.record_use("k1", "192.0.2.1", now=T0)
    usage.record_use("k1", None, now=T0 + 1)
    usage.record_use("k1", "192.0.2.9", now=T0 + 3600)
    usage.record_use("k2", "198.51.100.1", now=T0)
    counts, last = usage.drain_usage()
    assert counts == {("k1", HOUR): 2, ("k1", HOUR + 3600): 1, ("k2", HOUR): 1}
    assert last == {"k1": (T0 + 3600, "192.0.2.9"), "k2": (T0, "198.51.100.1")}
    assert usage.drain_usage() == ({}, {}), "each use is drained once"


def test_uses_from_many_threads_sum_exactly(configured):
    threads, each = 8, 500

    def use() -> None:
        for _ in range(each):
            usage.record_use("busy", "192.0.2.1", now=T0)

    workers = [threading.Thread(target=use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert usage.drain_usage()[0] == {("busy", HOUR): threads * each}


# -- anomaly.traffic ---------------------------------------------------------------------------------------
def test_traffic_counts_by_whole_minute(configured):
    # Traffic of earlier tests (delivered off their request paths, about a second later) may still be
    # buffered or arrive meanwhile: only this test's minutes and key are looked at.
    def ours(drained):
        counts, pairs = drained
        return ({k: n for k, n in counts.items() if k[1] in (int(T0), int(T0) + 60)},
                {p for p in pairs if p[0] == "k"})

    traffic.count_minute("client:a", now=T0)
    traffic.count_minute("client:a", n=4, now=T0 + 59.9)
    traffic.count_minute("client:a", now=T0 + 60)
    traffic.count_minute("key:k", pair=("k", "198.51.100.0/24"), now=T0 + 30)
    traffic.count_minute("key:k", pair=("k", "198.51.100.0/24"), now=T0 + 31)
    traffic.flush_traffic()
    traffic.count_minute("key:k", pair=("k", "2001:db8::/48"), now=T0 + 61)  # still buffered: drained too
    counts, pairs = ours(traffic.drain_traffic())
    assert counts == {("client:a", int(T0)): 5, ("client:a", int(T0) + 60): 1, ("key:k", int(T0)): 2,
                      ("key:k", int(T0) + 60): 1}
    assert pairs == {("k", "198.51.100.0/24"), ("k", "2001:db8::/48")}
    assert ours(traffic.drain_traffic()) == ({}, set())


def test_traffic_and_usage_do_not_mix(configured):
    traffic.count_minute("key:k", now=T0)
    usage.record_use("k", None, now=T0)
    assert usage.drain_usage()[0] == {("k", HOUR): 1}
    assert traffic.drain_traffic()[0] == {("key:k", int(T0)): 1}


# -- Published limits ------------------------------------------------------------------------------------
def test_published_limits_reach_the_reader(configured, settings):
    settings.ANOMALY_LIMIT_CACHE_SECONDS = 30
    assert counters.effective_limit("client:a") is None
    counters.publish_limits({"client:a": 40})
    assert counters.effective_limit("client:a") == 40, "publishing drops this process's cached answer"
    configured.set_limits({"client:a": 50})  # another process publishes
    assert counters.effective_limit("client:a") == 40, "cached for ANOMALY_LIMIT_CACHE_SECONDS"
    counters.publish_limits({"client:a": None})
    assert counters.effective_limit("client:a") is None


def test_an_unreachable_limit_store_means_static_limits(monkeypatch, settings):
    def broken(*args, **kwargs):
        raise OSError("down")

    monkeypatch.setattr(counters.backend(), "get_limit", broken)
    assert counters.effective_limit("client:z") is None
