"""The beat lock (authserver.beat): one holder at a time; the lock goes with its holder."""

from __future__ import annotations

from django.db import connection

from authserver.beat import beat_lock


def test_only_one_beat_holds_the_lock_until_it_lets_go(db):
    first, second = beat_lock(), beat_lock()
    try:
        assert first.acquire() is True
        assert first.acquire() is True, "the holder keeps it"
        assert second.acquire() is False, "a second beat stands by"
        first.release()
        assert second.acquire() is True, "and takes over once the first is gone"
        assert first.acquire() is False
    finally:
        first.release()
        second.release()


def test_the_lock_matches_the_database(db):
    lock = beat_lock()
    assert type(lock).__name__ == ("_AdvisoryLock" if connection.vendor == "postgresql" else "_FileLock")
