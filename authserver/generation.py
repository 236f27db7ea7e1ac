"""Revocation fan-out: a global generation number that every revocation bumps.

Each web worker may keep verification answers in memory (authserver.oauth.hotcache). An entry is
served only while the worker's copy of the generation equals the shared one, and the worker
re-reads the shared one at most every ``CHECK_INTERVAL`` seconds. A revocation bumps the shared
generation *before* it returns, so within ``CHECK_INTERVAL`` (< 1 s) every worker drops every
cached answer. If the shared store can't be read, cached answers are not used (fail closed: the
request goes to the database instead).

Cached answers are also served only while the database is known to be reachable
(:func:`cache_trusted`): the endpoint must answer 503 when it is down (fail closed), whether or not
the answer happens to be in memory. The check costs no round trip per request: a ``SELECT 1`` at
most every ``CHECK_INTERVAL`` per thread, and a non-blocking look at the connection's socket, which
turns readable as soon as the server closes it.

Changes to clients (a rotated secret, a resource server disabled or deleted) bump the generation
too, so resource-server authentication can be cached under the same rules
(authserver.oauth.selectors).

Shared store: Redis when configured (one ``INCR``/``GET``), else a file in the data directory
(embedded single-machine deployments: every process shares the disk).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

log = logging.getLogger("authserver.generation")

CHECK_INTERVAL = 0.1
_REDIS_KEY = "authserver:revocation-generation"


class _Shared:
    def __init__(self) -> None:
        self._redis = None
        self._path: Path | None = None

    def _client(self):  # type: ignore[no-untyped-def]
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
            value = client.get(_REDIS_KEY)
            if value is None:  # a new or emptied store: start above anything handed out before
                client.set(_REDIS_KEY, _fresh_base(), nx=True)
                value = client.get(_REDIS_KEY)
            return int(value)
        path = self._file()
        try:
            return int(path.read_text())
        except (FileNotFoundError, ValueError):
            return self._file_update(lambda current: current)

    def bump(self) -> int:
        if settings.REDIS_URL:
            pipe = self._client().pipeline(transaction=True)
            pipe.set(_REDIS_KEY, _fresh_base(), nx=True)
            pipe.incr(_REDIS_KEY)
            return int(pipe.execute()[1])
        return self._file_update(lambda current: current + 1)

    def _file_update(self, change: Any) -> int:
        path = self._file()
        # One writer at a time (fcntl lock), atomic replace so readers never see a partial file.
        import fcntl

        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = int(path.read_text())
            except (FileNotFoundError, ValueError):
                current = _fresh_base()
            value = change(current)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(value))
            os.replace(tmp, path)
            return value


def _fresh_base() -> int:
    """Where a new or emptied store starts counting: the clock, in microseconds.

    A generation must never be handed out twice. A Redis restarted without its data (or a
    deleted file) would otherwise count again from 1, and once revocations had bumped it back to
    a value some worker saw before the loss, answers that worker cached under that value would be
    served again. Bumps never outrun a microsecond clock, so this starts above every earlier value.
    """
    return time.time_ns() // 1000


_shared = _Shared()
_local = threading.local()
_state_lock = threading.Lock()
_state = {"generation": -1, "checked": 0.0, "healthy": False}


def current() -> int | None:
    """The generation this process may trust now, or None if it can't be confirmed."""
    now = time.monotonic()
    if now - _state["checked"] < CHECK_INTERVAL:
        return int(_state["generation"]) if _state["healthy"] else None
    with _state_lock:
        try:
            _state["generation"] = _shared.read()
            _state["healthy"] = True
        except Exception:  # noqa: BLE001 - any failure to confirm means: trust nothing cached
            log.warning("revocation generation unreadable; in-process cache disabled until it recovers")
            _state["healthy"] = False
        _state["checked"] = now
    return int(_state["generation"]) if _state["healthy"] else None


def bump() -> int:
    """Invalidate every worker's cached answers. Raises if the shared store is unreachable:
    a revocation that cannot be fanned out must not report success."""
    value = _shared.bump()
    with _state_lock:
        _state["generation"] = value
        _state["checked"] = time.monotonic()
        _state["healthy"] = True
    return value


def reset_for_tests() -> None:
    with _state_lock:
        _state.update(generation=-1, checked=0.0, healthy=False)
    _db_local.__dict__.clear()
    _shared._redis = None
    _shared._path = None


def invalidate(*, settle: bool = False) -> None:
    """Bump now and again after the surrounding transaction commits.

    ``settle=True`` (explicit revocations: RFC 7009, key revoke/suspend, revoke-all) then waits
    ``CHECK_INTERVAL`` before the caller can return: by then every worker has either re-read the
    generation or will on its next request, so the revocation is visible everywhere *before* the
    call reports success. Rotations don't wait (the old token's holder is the rotating client).

    The bump after commit is the one that matters: a worker that re-read the generation and
    queried the database before our commit could have cached the pre-revocation row under the
    new number. The bump now makes the revocation visible immediately to this process and to
    code running inside the same transaction (and to tests, whose transactions never commit).
    """
    from django.db import transaction

    bump()
    transaction.on_commit(_bump_and_settle if settle else bump)


def _bump_and_settle() -> None:
    bump()
    time.sleep(CHECK_INTERVAL)


_db_local = threading.local()


def _database_reachable() -> bool:
    """Is this thread's database connection usable, as far as can be told without a round trip?"""
    from django.db import connection

    raw = connection.connection
    fileno = getattr(raw, "fileno", None)
    if raw is not None and fileno is not None:
        try:
            readable, _, _ = select.select([fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if readable:  # an idle connection has nothing to read unless the server closed it
            return False
    now = time.monotonic()
    if now - getattr(_db_local, "checked", -1e9) < CHECK_INTERVAL:
        return bool(_db_local.ok)
    try:
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        ok = True
    except Exception:  # noqa: BLE001 - unreachable, whatever the reason: trust nothing cached
        ok = False
    _db_local.checked, _db_local.ok = now, ok
    return ok


def cache_trusted() -> int | None:
    """The generation under which cached answers may be served now, or None (go to the database)."""
    gen = current()
    if gen is None or not _database_reachable():
        return None
    return gen


NOW: Any = object()  # default of the hot selectors' ``trusted`` argument: read cache_trusted() now


def trusted_now(trusted: Any) -> int | None:
    """``trusted`` as given by a caller that read :func:`cache_trusted` for its request, or read now."""
    return cache_trusted() if trusted is NOW else trusted


def reset_database_check_for_tests() -> None:
    _db_local.__dict__.clear()


def _bump_quietly() -> None:
    try:
        bump()
    except Exception:  # noqa: BLE001 - the store is down: readers trust no cache while it is
        log.warning("revocation generation could not be bumped after a client change")


def _client_changed(sender: object, instance: object = None, created: bool = False, **kwargs: object) -> None:
    """A client changed (secret rotated, resource server disabled, deleted): cached resource-server
    authentications must go, now and again after commit (see :func:`invalidate`)."""
    if created:
        return
    from django.db import transaction

    _bump_quietly()
    transaction.on_commit(_bump_quietly)


post_save.connect(_client_changed, sender=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, weak=False,
                  dispatch_uid="authserver.generation.client_saved")
post_delete.connect(_client_changed, sender=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, weak=False,
                    dispatch_uid="authserver.generation.client_deleted")
post_delete.connect(_client_changed, sender="clients.RetiredClientSecret", weak=False,
                    dispatch_uid="authserver.generation.retired_secret_deleted")
