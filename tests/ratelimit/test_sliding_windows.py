"""Issue 12, item 14: no interval of a window's length admits more than the limit.

Fixed windows aligned to the clock admitted about twice the limit across a boundary (40 failed
logins passed a 30-per-5-minutes limit). Every path that counts a window is tested across a
boundary with an injected clock: both shared stores, the limiter on them, and the per-process
windows (the fallback when the store is down, and introspection's ``process`` policy).
"""

from __future__ import annotations

import random

import pytest

from authserver import counters
from authserver.ratelimit import limiter

pytestmark = pytest.mark.django_db

T0 = 1_700_000_100.0  # a whole 300 s window: T0 + 300 is a fixed window's boundary
assert T0 % 300 == 0


def _admitted(decide, times: list[float]) -> list[float]:
    return [t for t in times if decide(t)]


def _busiest_interval(admitted: list[float], window: int) -> int:
    """The most admitted hits inside any closed interval of ``window`` seconds."""
    admitted = sorted(admitted)
    best, start = 0, 0
    for end, t in enumerate(admitted):
        while admitted[start] < t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _burst_across_the_boundary() -> list[float]:
    # 40 hits just before the clock boundary, 40 just after: a fixed window admitted 30 + 30.
    return [T0 + 299 + i / 100 for i in range(40)] + [T0 + 300 + i / 100 for i in range(40)]


@pytest.fixture
def login_policy(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login.ip": ("30/300", "closed")}
    return "login.ip"


def test_store_admits_the_limit_once_across_a_boundary(window_store):
    def decide(t: float) -> bool:
        hit = window_store.consume("login.ip:192.0.2.0", baseline=None, period=300, now=t, limit=30)
        return hit.window_count <= 30

    admitted = _admitted(decide, _burst_across_the_boundary())
    assert len(admitted) == 30
    assert _busiest_interval(admitted, 300) == 30


def test_limiter_admits_the_limit_once_across_a_boundary(window_store, login_policy):
    def decide(t: float) -> bool:
        return limiter.limit_for(login_policy, "192.0.2.0", now=t).allowed

    admitted = _admitted(decide, _burst_across_the_boundary())
    assert len(admitted) == 30
    refused = limiter.limit_for(login_policy, "192.0.2.0", now=T0 + 301)
    assert not refused.allowed and refused.remaining == 0
    # Retry-After is when the next request is admitted: the first admitted hit (T0 + 299, in the
    # 5 s bucket [T0 + 295, T0 + 300)) leaves the window at T0 + 600.
    assert refused.reset == 600 - 301
    assert not limiter.limit_for(login_policy, "192.0.2.0", now=T0 + 599.9).allowed
    assert limiter.limit_for(login_policy, "192.0.2.0", now=T0 + 600).allowed


@pytest.mark.parametrize("seed", range(3))
def test_no_interval_admits_more_than_the_limit(window_store, login_policy, seed):
    rng = random.Random(seed)
    times = sorted(T0 + rng.uniform(0, 1500) for _ in range(400))
    admitted = _admitted(lambda t: limiter.limit_for(login_policy, "198.51.100.0", now=t).allowed, times)
    assert _busiest_interval(admitted, 300) <= 30
    assert len(admitted) >= 4 * 30 * 0.9, "sliding, not stuck: capacity returns as old hits leave"


def test_a_refused_request_does_not_extend_the_lockout(window_store, login_policy):
    for i in range(30):
        assert limiter.limit_for(login_policy, "203.0.113.0", now=T0 + i).allowed
    for t in range(30, 300, 5):  # hammering while over the limit
        assert not limiter.limit_for(login_policy, "203.0.113.0", now=T0 + t).allowed
    assert limiter.limit_for(login_policy, "203.0.113.0", now=T0 + 305).allowed, "the first hit has left"


def test_per_process_fallback_slides_too(settings, monkeypatch):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.ip": ("30/300", "local")}

    def down(*args, **kwargs):
        raise counters.CountersUnavailable("down")

    monkeypatch.setattr(counters, "consume", down)
    admitted = _admitted(lambda t: limiter.limit_for("token.ip", "192.0.2.0", now=t).allowed,
                         _burst_across_the_boundary())
    assert len(admitted) == 30


def test_process_policy_slides_too(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "introspect.rs": ("30/300", "process")}
    admitted = _admitted(lambda t: limiter.limit_for("introspect.rs", "rs-1", now=t).allowed,
                         _burst_across_the_boundary())
    assert len(admitted) == 30


def test_api_key_rate_limit_slides(window_store):
    from keys import usage

    uses = [usage.consume("key-1", quota=None, rate_limit=30, period=300, now=t)
            for t in _burst_across_the_boundary()]
    assert sum(not u.rate_limited for u in uses) == 30
    assert uses[-1].rate_limit_reset == T0 + 600, "the next use is admitted when the first leaves"


def test_the_clock_itself_crossing_a_boundary(window_store, login_policy, monkeypatch):
    """The same burst with the limiter reading the (patched) clock, as requests do: 60 of 80 were
    admitted with fixed windows."""
    admitted = 0
    for t in _burst_across_the_boundary():
        monkeypatch.setattr(limiter.time, "time", lambda t=t: t)
        admitted += limiter.limit_for(login_policy, "192.0.2.0").allowed
    assert admitted == 30


def test_a_flood_of_keys_does_not_reset_a_live_window():
    """Past 100,000 keys the per-process table forgets only windows that hold nothing: a key at its
    limit stays refused however many other keys (networks) arrive."""
    limiter.reset_for_tests()
    try:
        now = 1_000_000.0
        for _ in range(3):
            limiter._local_hit("victim", 3, 60, now)
        for n in range(100_002):  # their hits have left the window by the time the table is full
            limiter._local_hit(f"old{n}", 3, 60, now - 120)
        limiter._local_hit("newcomer", 3, 60, now)  # the table is full: idle windows are dropped
        assert len(limiter._local_windows) == 2
        count, _ = limiter._local_hit("victim", 3, 60, now)
        assert count == 4, "the victim's window was forgotten: its limit would be reset"
    finally:
        limiter.reset_for_tests()
