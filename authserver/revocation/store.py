"""Where the revocation generation is shared between processes: Redis, or a file.

Redis when ``REDIS_URL`` is configured (one ``GET`` or ``INCR``); otherwise a file in the data
directory, which every process of an embedded single-machine deployment shares. Only
:mod:`authserver.revocation` reads or bumps it, at most every ``CHECK_INTERVAL`` per process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

REDIS_KEY = "authserver:revocation-generation"


def fresh_base() -> int:
    """Where a new or emptied store starts counting: the clock, in microseconds.

    A generation must never be handed out twice. A Redis restarted without its data (or a
    deleted file) would otherwise count again from 1, and once revocations had bumped it back to
    a value some worker saw before the loss, answers that worker cached under that value would be
    served again. Bumps never outrun a microsecond clock, so this starts above every earlier value.
    """
    return time.time_ns() // 1000


class SharedGeneration:
    """The shared counter. Every method raises if the store can't be reached."""

    def __init__(self) -> None:
        self._redis: Any = None
        self._path: Path | None = None

    def forget_connections(self) -> None:
        self._redis = None
        self._path = None

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        return self._redis

    def _file(self) -> Path:
        if self._path is None:
            run = Path(settings.DATA_DIR) / "run"
            run.mkdir(mode=0o700, exist_ok=True)
            self._path = run / "revocation-generation"
        return self._path

    def read(self) -> int:
        if settings.REDIS_URL:
            client = self._client()
            value = client.get(REDIS_KEY)
            if value is None:  # a new or emptied store: start above anything handed out before
                client.set(REDIS_KEY, fresh_base(), nx=True)
                value = client.get(REDIS_KEY)
            return int(value)
        try:
            return int(self._file().read_text())
        except (FileNotFoundError, ValueError):
            return self._file_update(lambda current: current)

    def bump(self) -> int:
        if settings.REDIS_URL:
            pipe = self._client().pipeline(transaction=True)
            pipe.set(REDIS_KEY, fresh_base(), nx=True)
            pipe.incr(REDIS_KEY)
            return int(pipe.execute()[1])
        return self._file_update(lambda current: current + 1)

    def _file_update(self, change: Callable[[int], int]) -> int:
        path = self._file()
        # One writer at a time (fcntl lock), atomic replace so readers never see a partial file.
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = int(path.read_text())
            except (FileNotFoundError, ValueError):
                current = fresh_base()
            value = change(current)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(value))
            os.replace(tmp, path)
            return value
