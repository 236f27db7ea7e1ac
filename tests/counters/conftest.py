"""The store under test: the SQLite file always, Redis too when ``REDIS_URL`` is set.

Redis runs on database 9 whatever ``REDIS_URL`` names (``COUNTERS_TEST_REDIS_DB`` picks another, so
that runs side by side on one Redis don't flush each other's), and only that database is flushed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from authserver import counters
from authserver.counters.redis_store import RedisStore
from authserver.counters.sqlite_store import SQLiteStore

REDIS_TEST_DB = int(os.environ.get("COUNTERS_TEST_REDIS_DB", "9"))


def redis_test_url() -> str | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    return urlunsplit(urlsplit(url)._replace(path=f"/{REDIS_TEST_DB}"))


def _sqlite(tmp_path: Path) -> Iterator[counters.CounterStore]:
    yield SQLiteStore(tmp_path / "counters.sqlite3")


def _redis(tmp_path: Path) -> Iterator[counters.CounterStore]:
    url = redis_test_url()
    if url is None:
        pytest.skip("REDIS_URL not set")
    store = RedisStore(url)
    store.redis.flushdb()
    try:
        yield store
    finally:
        store.redis.flushdb()


@pytest.fixture(params=[_sqlite, _redis], ids=["sqlite", "redis"])
def store(request: Any, tmp_path: Path) -> Iterator[counters.CounterStore]:
    """Each store in turn (the same contract tests run against both)."""
    yield from request.param(tmp_path)


@pytest.fixture
def configured(store: counters.CounterStore, monkeypatch: pytest.MonkeyPatch) -> counters.CounterStore:
    """``store`` as the configured backend, for the owners' functions (keys.usage, anomaly.traffic)."""
    monkeypatch.setattr(counters, "_backend", store)
    return store
