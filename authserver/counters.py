"""Usage counters, quotas and per-key rate limits, off the database's write path.

Verification never writes the database (DESIGN.md decision 5). What it must count goes here:

* usage (requests per key per hour, last use and address): fire-and-forget, rolled up into the
  database by a job; losing a few counts when a process dies is acceptable (fail open: side effect);
* quotas and rate limits: synchronous, because they decide access; if the store is unreachable the
  caller fails closed.

Backends: Redis when ``REDIS_URL`` is set (one pipelined round trip per verification); otherwise an
SQLite file in the data directory, shared by every local process (embedded deployments). Usage on
the embedded backend is buffered in memory and flushed by a background thread, so the request
itself does no disk I/O for it.
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger("authserver.counters")


class CountersUnavailable(Exception):
    """The counter store can't be reached: access decisions that need it must fail closed."""


@dataclass(frozen=True)
class Limits:
    quota_remaining: int | None
    rate_limit_remaining: int | None
    rate_limit_reset: int | None  # unix time the current window ends

    @property
    def out_of_quota(self) -> bool:
        return self.quota_remaining is not None and self.quota_remaining < 0

    @property
    def rate_limited(self) -> bool:
        return self.rate_limit_remaining is not None and self.rate_limit_remaining < 0


def _hour(ts: float) -> int:
    return int(ts // 3600 * 3600)


class RedisCounters:
    USAGE = "authserver:usage"
    LAST_USED = "authserver:lastused"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def record_use(self, key_id: str, ip: str | None, now: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(self.USAGE, f"{key_id}|{_hour(now)}", 1)
        pipe.hset(self.LAST_USED, key_id, f"{now}|{ip or ''}")
        pipe.execute()

    def consume(self, key_id: str, *, quota: int | None, used_baseline: int, rate_limit: int | None,
                period: int | None, now: float) -> Limits:
        import redis

        pipe = self.redis.pipeline(transaction=True)
        if quota is not None:
            qkey = f"authserver:quota:{key_id}"
            pipe.set(qkey, used_baseline, nx=True)  # a lost counter restarts from the rolled-up count
            pipe.incr(qkey)
        window = reset = None
        if rate_limit is not None and period:
            window = int(now // period * period)
            reset = window + period
            rkey = f"authserver:rl:{key_id}:{window}"
            pipe.incr(rkey)
            pipe.expire(rkey, period + 5)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        quota_remaining = rate_remaining = None
        index = 0
        if quota is not None:
            quota_remaining = quota - int(results[1])
            index = 2
        if window is not None and rate_limit is not None:
            rate_remaining = rate_limit - int(results[index])
        return Limits(quota_remaining, rate_remaining, reset)

    def drain(self) -> tuple[dict[tuple[str, int], int], dict[str, tuple[float, str]]]:
        suffix = uuid.uuid4().hex
        usage: dict[tuple[str, int], int] = {}
        last: dict[str, tuple[float, str]] = {}
        for source, sink in ((self.USAGE, "usage"), (self.LAST_USED, "last")):
            tmp = f"{source}:draining:{suffix}"
            try:
                self.redis.rename(source, tmp)  # atomic: new increments go to a fresh hash
            except Exception:  # noqa: BLE001 - the hash does not exist: nothing to drain
                continue
            for field, value in self.redis.hgetall(tmp).items():
                if sink == "usage":
                    key_id, _, hour = field.decode().partition("|")
                    usage[(key_id, int(hour))] = usage.get((key_id, int(hour)), 0) + int(value)
                else:
                    ts, _, ip = value.decode().partition("|")
                    last[field.decode()] = (float(ts), ip)
            self.redis.delete(tmp)
        return usage, last

    def quota_used(self, key_id: str) -> int | None:
        value = self.redis.get(f"authserver:quota:{key_id}")
        return int(value) if value is not None else None

    def window_count(self, key_id: str, period: int, now: float) -> int:
        import redis

        try:
            value = self.redis.get(f"authserver:rl:{key_id}:{int(now // period * period)}")
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        return int(value or 0)


class EmbeddedCounters:
    FLUSH_INTERVAL = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._buffer: list[tuple[str, str | None, float]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS usage (key_id TEXT, hour INTEGER, n INTEGER, PRIMARY KEY (key_id, hour));
                CREATE TABLE IF NOT EXISTS last_used (key_id TEXT PRIMARY KEY, ts REAL, ip TEXT);
                CREATE TABLE IF NOT EXISTS quota (key_id TEXT PRIMARY KEY, used INTEGER);
                CREATE TABLE IF NOT EXISTS rate (key_id TEXT, window INTEGER, n INTEGER, PRIMARY KEY (key_id, window));
                """
            )
        path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def record_use(self, key_id: str, ip: str | None, now: float) -> None:
        with self._lock:
            self._buffer.append((key_id, ip, now))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._flush_forever, name="usage-flush", daemon=True)
                self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_INTERVAL)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - usage is a side effect: log and keep going
                log.exception("usage flush failed")

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            for key_id, ip, ts in batch:
                db.execute(
                    "INSERT INTO usage VALUES (?, ?, 1) ON CONFLICT (key_id, hour) DO UPDATE SET n = n + 1",
                    (key_id, _hour(ts)),
                )
                db.execute(
                    "INSERT INTO last_used VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET ts = excluded.ts, "
                    "ip = excluded.ip WHERE excluded.ts >= last_used.ts",
                    (key_id, ts, ip or ""),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def consume(self, key_id: str, *, quota: int | None, used_baseline: int, rate_limit: int | None,
                period: int | None, now: float) -> Limits:
        db = self._connect()
        quota_remaining = rate_remaining = reset = None
        try:
            db.execute("BEGIN IMMEDIATE")
            if quota is not None:
                db.execute("INSERT OR IGNORE INTO quota VALUES (?, ?)", (key_id, used_baseline))
                (used,) = db.execute("UPDATE quota SET used = used + 1 WHERE key_id = ? RETURNING used",
                                     (key_id,)).fetchone()
                quota_remaining = quota - int(used)
            if rate_limit is not None and period:
                window = int(now // period * period)
                reset = window + period
                db.execute("DELETE FROM rate WHERE key_id = ? AND window < ?", (key_id, window))
                (count,) = db.execute(
                    "INSERT INTO rate VALUES (?, ?, 1) ON CONFLICT (key_id, window) DO UPDATE SET n = n + 1 "
                    "RETURNING n", (key_id, window)).fetchone()
                rate_remaining = rate_limit - int(count)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise CountersUnavailable(str(exc)) from exc
        return Limits(quota_remaining, rate_remaining, reset)

    def drain(self) -> tuple[dict[tuple[str, int], int], dict[str, tuple[float, str]]]:
        self.flush()
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        usage = {(k, int(h)): int(n) for k, h, n in db.execute("SELECT key_id, hour, n FROM usage")}
        last = {k: (float(ts), ip) for k, ts, ip in db.execute("SELECT key_id, ts, ip FROM last_used")}
        db.execute("DELETE FROM usage")
        db.execute("DELETE FROM last_used")
        db.execute("COMMIT")
        return usage, last

    def quota_used(self, key_id: str) -> int | None:
        row = self._connect().execute("SELECT used FROM quota WHERE key_id = ?", (key_id,)).fetchone()
        return int(row[0]) if row else None

    def window_count(self, key_id: str, period: int, now: float) -> int:
        try:
            row = self._connect().execute("SELECT n FROM rate WHERE key_id = ? AND window = ?",
                                          (key_id, int(now // period * period))).fetchone()
        except sqlite3.Error as exc:
            raise CountersUnavailable(str(exc)) from exc
        return int(row[0]) if row else 0


_backend: Any = None
_backend_lock = threading.Lock()


def backend() -> RedisCounters | EmbeddedCounters:
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                if settings.REDIS_URL:
                    _backend = RedisCounters(settings.REDIS_URL)
                else:
                    _backend = EmbeddedCounters(Path(settings.DATA_DIR) / "counters.sqlite3")
                    atexit.register(_backend.flush)
    return _backend


def record_use(key_id: str, ip: str | None) -> None:
    """Count one verified use. Never raises: usage is a side effect (fails open)."""
    try:
        backend().record_use(key_id, ip, time.time())
    except Exception:  # noqa: BLE001
        log.warning("usage counter unavailable; one use not counted", extra={"key_id": key_id})


def consume(key_id: str, *, quota: int | None, used_baseline: int, rate_limit: int | None,
            period: int | None) -> Limits:
    """Count one use against the key's quota and rate limit. Raises CountersUnavailable."""
    if quota is None and rate_limit is None:
        return Limits(None, None, None)
    try:
        return backend().consume(key_id, quota=quota, used_baseline=used_baseline, rate_limit=rate_limit,
                                 period=period, now=time.time())
    except CountersUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any store failure means: can't decide, fail closed
        raise CountersUnavailable(str(exc)) from exc


def window_count(key_id: str, period: int) -> int:
    """How many hits the current window of ``key_id`` has, without counting one. Raises CountersUnavailable."""
    try:
        return backend().window_count(key_id, period, time.time())
    except CountersUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CountersUnavailable(str(exc)) from exc


def reset_for_tests() -> None:
    global _backend
    _backend = None


def wipe_for_tests() -> None:
    """Forget every count (usage, quotas, rate windows) in whichever store is configured."""
    store = backend()
    if isinstance(store, RedisCounters):
        for pattern in ("authserver:rl:*", "authserver:quota:*", "authserver:usage*", "authserver:lastused*"):
            keys = list(store.redis.scan_iter(pattern, count=1000))
            if keys:
                store.redis.delete(*keys)
    else:
        with store._lock:
            store._buffer = []
        db = store._connect()
        db.execute("BEGIN IMMEDIATE")
        for table in ("usage", "last_used", "quota", "rate"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        db.execute("COMMIT")
