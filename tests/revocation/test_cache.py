"""The verification cache: bounded by TTL, by the credential's own expiry, by generation and by size."""

from __future__ import annotations

import threading

import pytest

from authserver.revocation import RequestView, VerificationCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(clock):
    return VerificationCache(maxsize=3, ttl=30.0, clock=clock)


def test_an_entry_is_served_under_its_generation(cache):
    cache.put("k", "row", expires_at=2e9, generation=7)
    assert cache.get("k", 7) == "row"
    assert RequestView(7).get(cache, "k") == "row"


@pytest.mark.parametrize("generation", [6, 8, None])
def test_another_generation_or_none_serves_nothing_and_drops_it(cache, generation):
    cache.put("k", "row", expires_at=2e9, generation=7)
    assert cache.get("k", generation) is None
    assert cache.get("k", 7) is None  # dropped: a stale entry never comes back


def test_nothing_is_stored_without_a_confirmed_generation(cache):
    cache.put("k", "row", expires_at=2e9, generation=None)
    assert len(cache) == 0


def test_ttl_bounds_an_entry(cache, clock):
    cache.put("k", "row", expires_at=2e9, generation=1)
    clock.now += 29.9
    assert cache.get("k", 1) == "row"
    clock.now += 0.1
    assert cache.get("k", 1) is None


def test_the_credentials_expiry_bounds_an_entry_before_the_ttl(cache, clock):
    cache.put("k", "row", expires_at=clock.now + 5, generation=1)
    clock.now += 4.9
    assert cache.get("k", 1) == "row"
    clock.now += 0.1
    assert cache.get("k", 1) is None


def test_an_already_expired_credential_is_never_served(cache, clock):
    cache.put("k", "row", expires_at=clock.now - 1, generation=1)
    assert cache.get("k", 1) is None


def test_size_is_bounded_least_recently_used_first(cache):
    for key in "abc":
        cache.put(key, key, expires_at=2e9, generation=1)
    assert cache.get("a", 1) == "a"  # a is now the most recent
    cache.put("d", "d", expires_at=2e9, generation=1)
    assert len(cache) == 3
    assert cache.get("b", 1) is None
    assert [cache.get(k, 1) for k in "acd"] == ["a", "c", "d"]


def test_clear(cache):
    cache.put("k", "row", expires_at=2e9, generation=1)
    cache.clear()
    assert cache.get("k", 1) is None


def test_concurrent_use_stays_bounded_and_consistent(clock):
    cache = VerificationCache(maxsize=100, ttl=30.0, clock=clock)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(2_000):
                key = f"{worker}:{i % 150}"
                cache.put(key, key, expires_at=2e9, generation=1)
                value = cache.get(key, 1)
                assert value is None or value == key
                cache.get(f"{(worker + 1) % 4}:{i % 150}", 2)  # a stale generation drops entries meanwhile
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 100
