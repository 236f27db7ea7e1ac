"""manage.py migrate_locked: two processes starting together migrate once; the second waits for
the advisory lock, then finds nothing to do. SQLite needs no lock."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from authserver.oauth.management.commands.migrate_locked import MIGRATION_LOCK_KEY, migration_lock

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (CI's second pass)")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("migrate_locked", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_nothing_to_apply_and_the_key_store_checked():
    out = run()
    assert "No migrations to apply" in out and "Key store:" in out


@pytest.mark.django_db
def test_sqlite_takes_no_lock():
    if connection.vendor != "sqlite":
        pytest.skip("the embedded database")
    with migration_lock("default", wait=0):  # no second connection, nothing to wait for
        pass


@pytest.fixture
def lock_held_elsewhere():
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    yield other
    other.close()


@needs_postgres
@pytest.mark.django_db
def test_waits_for_the_replica_that_migrates_then_finds_nothing_to_do(lock_held_elsewhere):
    outcome: dict[str, str] = {}

    def second_replica() -> None:
        try:
            outcome["out"] = run("--wait", "20")
        finally:
            connections.close_all()

    thread = threading.Thread(target=second_replica)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # blocked on the lock
    with lock_held_elsewhere.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    thread.join(20)
    assert not thread.is_alive()
    assert "waiting" in outcome["out"] and "No migrations to apply" in outcome["out"]


@needs_postgres
@pytest.mark.django_db
def test_gives_up_after_wait(lock_held_elsewhere):
    started = time.monotonic()
    with pytest.raises(CommandError, match="migration lock was still held"):
        run("--wait", "0.3")
    assert time.monotonic() - started < 5


@needs_postgres
@pytest.mark.django_db
def test_lock_released_afterwards():
    run()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            assert cursor.fetchone()[0]
    finally:
        other.close()
