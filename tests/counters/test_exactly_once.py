"""The store contract behind exactly-once roll-ups and leased quotas, against every store:
stage/pending/settle (issue 12 item 2) and quota_take/quota_grant (item 3)."""

from __future__ import annotations

import pytest

from authserver.counters import Batch, QuotaTake, Tally
from authserver.counters.redis_store import RedisStore

TALLY = Tally(counts="eo_counts", latest="eo_latest", pairs="eo_pairs")


def _batch(n: int, name: str = "a") -> Batch:
    batch = Batch()
    batch.count(name, 0, n)
    batch.latest[name] = (float(n), f"ip{n}")
    batch.pairs.add((name, str(n)))
    return batch


def test_stage_moves_everything_into_one_pending_batch(store):
    store.add(TALLY, _batch(3))
    store.stage(TALLY)
    pending = store.pending(TALLY)
    assert list(pending.values()) == [_batch(3)]
    assert not store.drain(TALLY), "nothing live is left"
    store.add(TALLY, _batch(2, "b"))  # counts after the stage go to the live tally
    assert store.pending(TALLY) == pending, "a pending batch is read again, unchanged, until settled"


def test_batches_stay_pending_in_order_until_settled(store):
    store.stage(TALLY)
    assert store.pending(TALLY) == {}, "nothing counted: no batch"
    store.add(TALLY, _batch(1))
    store.stage(TALLY)
    store.add(TALLY, _batch(2, "b"))
    store.stage(TALLY)
    pending = store.pending(TALLY)
    assert list(pending.values()) == [_batch(1), _batch(2, "b")], "oldest first"
    first, second = pending
    assert first < second
    store.settle(TALLY, first)
    store.settle(TALLY, first)  # idempotent: a re-run may settle again
    assert list(store.pending(TALLY)) == [second]
    store.settle(TALLY, second)
    assert store.pending(TALLY) == {}


def test_a_store_that_fails_mid_stage_moves_nothing(store, monkeypatch):
    """The move is one atomic step: either the whole tally is pending or all of it is still live."""
    store.add(TALLY, _batch(4))
    if isinstance(store, RedisStore):
        monkeypatch.setattr(store, "_stage", lambda **kw: (_ for _ in ()).throw(ConnectionError("gone")))
    else:
        real = store._connect()

        class Failing:
            def __getattr__(self, name):
                return getattr(real, name)

            def execute(self, sql, *args):
                if sql.startswith("DELETE FROM eo_latest"):
                    raise __import__("sqlite3").OperationalError("disk I/O error")
                return real.execute(sql, *args)

        monkeypatch.setattr(store, "_connect", lambda: Failing())
    with pytest.raises(Exception):  # noqa: B017, PT011 - the store's own error type
        store.stage(TALLY)
    monkeypatch.undo()
    assert store.pending(TALLY) == {}
    assert store.drain(TALLY) == _batch(4)


# -- Quota counters inside leased blocks ------------------------------------------------------------
def test_quota_counts_only_inside_leases(store):
    first = store.quota_take("k", quota=5)
    assert first.used == 0 and first.lease_nonce, "a new counter asks for a lease"
    assert store.quota_take("k", quota=5).lease_nonce == first.lease_nonce, "same placeholder until granted"
    assert store.quota_grant("k", nonce=first.lease_nonce, start=0, leased=2)
    assert [store.quota_take("k", quota=5) for _ in range(2)] == [QuotaTake(1), QuotaTake(2)]
    need = store.quota_take("k", quota=5)
    assert need.lease_nonce == first.lease_nonce, "lease used up, quota not: lease again"
    assert store.quota_grant("k", nonce=need.lease_nonce, start=2, leased=5)
    assert store.quota_grant("k", nonce=need.lease_nonce, start=0, leased=3), "a late, smaller lease ..."
    assert [store.quota_take("k", quota=5).used for _ in range(3)] == [3, 4, 5], "... never lowers it"
    assert [store.quota_take("k", quota=5) for _ in range(2)] == [QuotaTake(6), QuotaTake(6)], (
        "the whole quota leased and used: over, without a lease and without counting on")
    assert store.quota_take("k", quota=8).lease_nonce, "a raised quota leases again"


def test_a_lost_counter_restarts_only_from_a_lease_taken_after_the_loss(store):
    before = store.quota_take("k", quota=10)
    assert store.quota_grant("k", nonce=before.lease_nonce, start=0, leased=3)
    stale = store.quota_take("k", quota=10)  # a process asks before the loss ...
    for _ in range(2):
        store.quota_take("k", quota=10)
    store.wipe([])  # ... the store loses everything ...
    after = store.quota_take("k", quota=10)
    assert after.lease_nonce and after.lease_nonce != stale.lease_nonce
    assert not store.quota_grant("k", nonce=before.lease_nonce, start=0, leased=6), (
        "... and its lease, taken before the loss, must not start the new counter at 0")
    assert store.quota_grant("k", nonce=after.lease_nonce, start=6, leased=8)
    assert [store.quota_take("k", quota=10).used for _ in range(2)] == [7, 8]


def test_an_earlier_release_running_total_is_respected(store):
    """A rolling upgrade: the old running total (``quota`` counters) is the floor of a new counter."""
    store.consume("k", baseline=4, period=None, now=0.0)  # the earlier release counted 5 uses
    take = store.quota_take("k", quota=10)
    assert store.quota_grant("k", nonce=take.lease_nonce, start=2, leased=7)
    assert [store.quota_take("k", quota=10).used for _ in range(2)] == [6, 7]
