"""The shared generation store, on both backends: a file in the data directory, and Redis.

The file store always runs; the Redis store runs against the Redis of CI's second pass (REDIS_URL)
on a key of its own, and is exercised there by every other test too.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from authserver.revocation.store import REDIS_KEY, SharedGeneration, fresh_base


@pytest.fixture
def file_store(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    return SharedGeneration()


@pytest.fixture
def redis_store(settings, monkeypatch):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("the Redis store runs in CI's second pass (REDIS_URL)")
    monkeypatch.setattr("authserver.revocation.store.REDIS_KEY", REDIS_KEY + ":test-store")
    store = SharedGeneration()
    store._client().delete(REDIS_KEY + ":test-store")
    yield store
    store._client().delete(REDIS_KEY + ":test-store")


@pytest.fixture(params=["file_store", "redis_store"])
def store(request):
    return request.getfixturevalue(request.param)


def test_a_new_store_starts_from_the_clock(store):
    before = fresh_base()
    assert store.read() >= before


def test_reads_are_stable_and_bumps_increase(store):
    first = store.read()
    assert store.read() == first
    assert store.bump() == first + 1
    assert store.read() == first + 1


def test_an_emptied_store_never_repeats_a_value(store, settings):
    store.read()
    high = max(store.bump() for _ in range(5))
    if settings.REDIS_URL:  # Redis restarted without its data
        store._client().delete(REDIS_KEY + ":test-store")
    else:  # the file deleted
        store._file().unlink()
    time.sleep(0.001)
    assert store.read() > high


def test_a_corrupt_file_starts_again_above_every_earlier_value(file_store):
    high = file_store.bump()
    file_store._file().write_text("not a number")
    assert file_store.read() > high


def test_concurrent_bumps_are_all_counted(store):
    start = store.read()
    threads = [threading.Thread(target=lambda: [store.bump() for _ in range(20)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.read() == start + 80


def test_an_unreachable_redis_raises(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    store = SharedGeneration()
    with pytest.raises(Exception):  # noqa: B017 - any failure: the caller trusts no cache then
        store.read()
    with pytest.raises(Exception):  # noqa: B017
        store.bump()
