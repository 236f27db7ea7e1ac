"""The beat scheduler: django-celery-beat's database scheduler, run by one beat at a time.

Platform layer (Celery wiring). Two beats reading the same schedule would both send every due
task: a second beat started by mistake (a replica count of 2, a deploy overlapping the old
container) would double every job. So the scheduler only dispatches while it holds the beat lock;
a second beat starts, ticks, and sends nothing until the first one is gone, then takes over
(re-reading the schedule, with the run times the first one saved).

The lock:

- **PostgreSQL**: a session-level advisory lock on a fixed key, held on a connection of its own
  (as ``migrate_locked`` does), so nothing the scheduler does with Django's connection can drop
  it. It lives exactly as long as that session: a beat that dies, is killed or loses its network
  releases it without any TTL to wait out. Each tick first checks the holder session still
  answers; if it does not (the database restarted, the connection was cut), the lock may already
  be someone else's, so this beat stops dispatching and competes for it again.
- **SQLite** (the embedded deployment, one machine): an exclusive ``flock`` on
  ``<data dir>/run/celerybeat.lock``, released by the kernel when the process exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django_celery_beat.schedulers import DatabaseScheduler  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

# A fixed 64-bit key every beat agrees on: b"authbeat" read as a big-endian integer.
BEAT_LOCK_KEY = int.from_bytes(b"authbeat", "big")
# How often a standby beat tries to take the lock (and a holder re-checks it at the latest).
STANDBY_INTERVAL = 2.0


class _AdvisoryLock:
    """The PostgreSQL beat lock, on a session of its own."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.holder: Any = None

    def acquire(self) -> bool:
        """Take the lock if it is free; True while it is ours (the holder session still answers)."""
        try:
            if self.holder is None:
                self.holder = connections.create_connection(self.alias)
                with self.holder.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [BEAT_LOCK_KEY])
                    if not cursor.fetchone()[0]:
                        self.release()
                        return False
                return True
            with self.holder.cursor() as cursor:  # the session, and with it the lock, is still alive
                cursor.execute("SELECT 1")
            return True
        except DatabaseError:
            self.release()
            return False

    def release(self) -> None:
        if self.holder is not None:
            try:
                self.holder.close()  # ending the session releases every session-level advisory lock
            except DatabaseError:
                pass
            self.holder = None


class _FileLock:
    """The SQLite beat lock: an exclusive flock in the data directory."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        run_dir = settings.DATA_DIR / "run"
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(run_dir / "celerybeat.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def beat_lock() -> _AdvisoryLock | _FileLock:
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        return _AdvisoryLock(DEFAULT_DB_ALIAS)
    return _FileLock()


class LockedDatabaseScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` that dispatches only while this beat holds the beat lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = beat_lock()
        self._holding = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        held = self._lock.acquire()
        if held and not self._holding:
            logger.info("beat: took the beat lock; dispatching the schedule")
            ready_file = os.environ.get("AUTHSERVER_SERVE_BEAT_READY_FILE")
            if ready_file:  # manage.py serve waits for this before it prints its summary
                Path(ready_file).write_text(f"{os.getpid()}\n")
            # Start from the schedule as the database has it now (a previous beat saved its run times).
            self._initial_read = True
            self._heap = None
        elif self._holding and not held:
            logger.warning("beat: lost the beat lock; dispatching stops until it is taken again")
        elif not held and not getattr(self, "_announced_standby", False):
            logger.info("beat: another beat holds the beat lock; standing by")
            self._announced_standby = True
        self._holding = held
        if not held:
            return STANDBY_INTERVAL
        return min(float(super().tick(*args, **kwargs)), STANDBY_INTERVAL)

    def close(self) -> None:
        try:
            if self._holding:
                super().close()  # saves the run times; a standby beat has nothing of its own to save
        finally:
            self._lock.release()
            self._holding = False
