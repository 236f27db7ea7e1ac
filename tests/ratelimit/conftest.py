"""Stores for the window tests: the SQLite file always, Redis too when ``REDIS_URL`` is set (on the
database ``REDIS_URL`` names: the CI pass gives the suite its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authserver import counters
from authserver.counters.redis_store import RedisStore
from authserver.counters.sqlite_store import SQLiteStore


def _sqlite(tmp_path: Path) -> Iterator[counters.CounterStore]:
    yield SQLiteStore(tmp_path / "counters.sqlite3")


def _redis(tmp_path: Path) -> Iterator[counters.CounterStore]:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL not set: the Redis store runs in the PostgreSQL + Redis pass")
    store = RedisStore(url)
    store.wipe([])
    try:
        yield store
    finally:
        store.wipe([])


@pytest.fixture(params=[_sqlite, _redis], ids=["sqlite", "redis"])
def window_store(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[counters.CounterStore]:
    """Each store in turn, configured as the limiter's backend."""
    for store in request.param(tmp_path):
        monkeypatch.setattr(counters, "_backend", store)
        yield store
