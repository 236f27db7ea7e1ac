"""The in-memory buffer: counts pushed on demand, by its thread, and dropped (logged) when the store is away."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from authserver.counters import Batch, Buffer, Tally

TALLY = Tally(counts="buffer_test")


class RecordingStore:
    def __init__(self) -> None:
        self.pushed: list[Batch] = []
        self.failing = False
        self.event = threading.Event()

    def add(self, tally: Tally, batch: Batch) -> None:
        assert tally == TALLY
        if self.failing:
            raise ConnectionError("store down")
        self.pushed.append(batch)
        self.event.set()


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


def _buffer(store: RecordingStore, interval: float) -> Buffer:
    return Buffer(TALLY, lambda: store, interval=interval)  # type: ignore[arg-type, return-value]


def test_flush_on_demand_pushes_once(store):
    buffer = _buffer(store, interval=3600)
    try:
        with buffer.adding() as batch:
            batch.count("a", 0)
            batch.count("a", 0, 2)
        buffer.flush()
        buffer.flush()  # nothing new: no push
        assert store.pushed == [Batch(counts={("a", 0): 3})]
    finally:
        buffer.stop()


def test_the_thread_flushes_without_being_asked(store):
    buffer = _buffer(store, interval=0.05)
    try:
        with buffer.adding() as batch:
            batch.latest["k"] = (1.0, "192.0.2.1")
        assert store.event.wait(5), "pushed by the thread within its interval"
        assert store.pushed == [Batch(latest={"k": (1.0, "192.0.2.1")})]
    finally:
        buffer.stop()


def test_a_store_that_is_away_drops_the_batch_with_a_warning(store, caplog):
    buffer = _buffer(store, interval=3600)
    store.failing = True
    try:
        with buffer.adding() as batch:
            batch.count("a", 0, 7)
        with caplog.at_level(logging.WARNING, logger="authserver.counters"):
            buffer.flush()  # never raises
        assert "7 counts dropped" in caplog.text
        store.failing = False
        buffer.flush()
        assert store.pushed == [], "dropped, not retried"
    finally:
        buffer.stop()


def test_clear_forgets_what_is_buffered(store):
    buffer = _buffer(store, interval=3600)
    try:
        with buffer.adding() as batch:
            batch.count("a", 0)
        buffer.clear()
        buffer.flush()
        assert store.pushed == []
    finally:
        buffer.stop()


def test_a_flush_waits_for_a_push_in_flight(store):
    """A drain flushes first: it must not run while the thread is still pushing counts it took."""
    release = threading.Event()
    slow_add = store.add

    def slow(tally: Tally, batch: Batch) -> None:
        release.wait(5)
        slow_add(tally, batch)

    store.add = slow  # type: ignore[method-assign]
    buffer = _buffer(store, interval=3600)
    try:
        with buffer.adding() as batch:
            batch.count("a", 0)
        first = threading.Thread(target=buffer.flush)
        first.start()
        time.sleep(0.05)  # the first flush has taken the batch and is pushing
        second = threading.Thread(target=buffer.flush)
        second.start()
        second.join(0.2)
        assert second.is_alive(), "the second flush waits"
        release.set()
        first.join(5)
        second.join(5)
        assert store.pushed == [Batch(counts={("a", 0): 1})]
    finally:
        buffer.stop()
