"""Usage counters, quotas and per-key rate limits, off the database's write path.

Verification never writes the database (docs/decisions/0005-introspection-hot-path.md). What it must count goes here:

* usage (requests per key per hour, last use and address): fire-and-forget, rolled up into the
  database by a job; losing a few counts when a process dies is acceptable (fail open: side effect);
* quotas and rate limits: synchronous, because they decide access; if the store is unreachable the
  caller fails closed.

Backends: Redis when ``REDIS_URL`` is set; otherwise an SQLite file in the data directory, shared
by every local process (embedded deployments). Usage is added up in memory and flushed to either
store by a background thread every second (and at exit), so verification itself does no I/O for
it; quotas and rate limits are one pipelined round trip, and only for keys that have them.
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
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

    def add_usage(self, counts: dict[tuple[str, int], int], last: dict[str, tuple[float, str]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for (key_id, hour), n in counts.items():
            pipe.hincrby(self.USAGE, f"{key_id}|{hour}", n)
        for key_id, (ts, ip) in last.items():
            pipe.hset(self.LAST_USED, key_id, f"{ts}|{ip}")
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
            except Exception:  # noqa: BLE001, S112 - the hash does not exist: nothing to drain
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

    # -- Per-minute traffic and effective limits (authserver.anomaly) ------------------------------
    TRAFFIC = "authserver:traffic"
    KEYNETS = "authserver:keynets"
    LIMITS = "authserver:limits"

    def add_traffic(self, counts: dict[tuple[str, int], int], pairs: set[tuple[str, str]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for (series, minute), n in counts.items():
            pipe.hincrby(self.TRAFFIC, f"{series}|{minute}", n)
        if pairs:
            pipe.sadd(self.KEYNETS, *(f"{key_id}|{network}" for key_id, network in pairs))
        pipe.execute()

    def drain_traffic(self) -> tuple[dict[tuple[str, int], int], set[tuple[str, str]]]:
        suffix = uuid.uuid4().hex
        counts: dict[tuple[str, int], int] = {}
        pairs: set[tuple[str, str]] = set()
        for source in (self.TRAFFIC, self.KEYNETS):
            tmp = f"{source}:draining:{suffix}"
            try:
                self.redis.rename(source, tmp)  # atomic: new counts go to a fresh key
            except Exception:  # noqa: BLE001, S112 - nothing to drain
                continue
            if source == self.TRAFFIC:
                for field, value in self.redis.hgetall(tmp).items():
                    series, _, minute = field.decode().rpartition("|")
                    counts[(series, int(minute))] = counts.get((series, int(minute)), 0) + int(value)
            else:
                for member in self.redis.smembers(tmp):
                    key_id, _, network = member.decode().partition("|")
                    pairs.add((key_id, network))
            self.redis.delete(tmp)
        return counts, pairs

    def set_limits(self, limits: dict[str, int | None]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        keep = {k: int(v) for k, v in limits.items() if v is not None}
        drop = [k for k, v in limits.items() if v is None]
        if keep:
            pipe.hset(self.LIMITS, mapping=keep)
        if drop:
            pipe.hdel(self.LIMITS, *drop)
        pipe.execute()

    def get_limit(self, subject: str) -> int | None:
        value = self.redis.hget(self.LIMITS, subject)
        return int(value) if value is not None else None


class EmbeddedCounters:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS usage (key_id TEXT, hour INTEGER, n INTEGER, PRIMARY KEY (key_id, hour));
                CREATE TABLE IF NOT EXISTS last_used (key_id TEXT PRIMARY KEY, ts REAL, ip TEXT);
                CREATE TABLE IF NOT EXISTS quota (key_id TEXT PRIMARY KEY, used INTEGER);
                CREATE TABLE IF NOT EXISTS rate (key_id TEXT, window INTEGER, n INTEGER, PRIMARY KEY (key_id, window));
                CREATE TABLE IF NOT EXISTS traffic (series TEXT, minute INTEGER, n INTEGER,
                                                    PRIMARY KEY (series, minute));
                CREATE TABLE IF NOT EXISTS keynets (key_id TEXT, network TEXT, PRIMARY KEY (key_id, network));
                CREATE TABLE IF NOT EXISTS limits (subject TEXT PRIMARY KEY, lim INTEGER);
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

    def add_usage(self, counts: dict[tuple[str, int], int], last: dict[str, tuple[float, str]]) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO usage VALUES (?, ?, ?) ON CONFLICT (key_id, hour) DO UPDATE SET n = n + excluded.n",
                [(key_id, hour, n) for (key_id, hour), n in counts.items()],
            )
            db.executemany(
                "INSERT INTO last_used VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET ts = excluded.ts, "
                "ip = excluded.ip WHERE excluded.ts >= last_used.ts",
                [(key_id, ts, ip) for key_id, (ts, ip) in last.items()],
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

    # -- Per-minute traffic and effective limits (authserver.anomaly) ------------------------------
    def add_traffic(self, counts: dict[tuple[str, int], int], pairs: set[tuple[str, str]]) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO traffic VALUES (?, ?, ?) ON CONFLICT (series, minute) DO UPDATE SET n = n + "
                           "excluded.n", [(series, minute, n) for (series, minute), n in counts.items()])
            db.executemany("INSERT OR IGNORE INTO keynets VALUES (?, ?)", sorted(pairs))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def drain_traffic(self) -> tuple[dict[tuple[str, int], int], set[tuple[str, str]]]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        counts = {(series, int(minute)): int(n) for series, minute, n in
                  db.execute("SELECT series, minute, n FROM traffic")}
        pairs = {(k, net) for k, net in db.execute("SELECT key_id, network FROM keynets")}
        db.execute("DELETE FROM traffic")
        db.execute("DELETE FROM keynets")
        db.execute("COMMIT")
        return counts, pairs

    def set_limits(self, limits: dict[str, int | None]) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO limits VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET lim = excluded.lim",
                           [(k, int(v)) for k, v in limits.items() if v is not None])
            db.executemany("DELETE FROM limits WHERE subject = ?", [(k,) for k, v in limits.items() if v is None])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def get_limit(self, subject: str) -> int | None:
        row = self._connect().execute("SELECT lim FROM limits WHERE subject = ?", (subject,)).fetchone()
        return int(row[0]) if row else None


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
    return _backend


class _Buffered:
    """Counts added up in memory and pushed to the store by a background thread every
    ``interval`` seconds (and at exit). A side effect: if the store is down the batch is logged
    and dropped, never raised into a request."""

    def __init__(self, name: str, empty: Callable[[], tuple[Any, ...]], push: Callable[..., None],
                 interval: float = 1.0) -> None:
        self.name, self._empty, self._push, self.interval = name, empty, push, interval
        self.lock = threading.Lock()
        self.state = empty()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def ensure_thread(self) -> None:
        """Start the flushing thread if it isn't running (call with ``lock`` held)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._forever, name=f"{self.name}-flush", daemon=True)
            self._thread.start()

    def _forever(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            state, self.state = self.state, self._empty()
        if not any(state):
            return
        try:
            self._push(*state)
        except Exception:  # noqa: BLE001 - a side effect: log and drop
            log.warning("%s counters unavailable; %d counts dropped", self.name, sum(state[0].values()))

    def clear(self) -> None:
        with self.lock:
            self.state = self._empty()


# Usage: requests per key and hour, and each key's last use (rolled up into the database by a job).
_usage = _Buffered("usage", lambda: ({}, {}), lambda counts, last: backend().add_usage(counts, last))


def record_use(key_id: str, ip: str | None) -> None:
    """Count one verified use (in memory; flushed within a second). Never raises."""
    try:
        now = time.time()
        bucket = (key_id, _hour(now))
        with _usage.lock:
            counts, last = _usage.state
            counts[bucket] = counts.get(bucket, 0) + 1
            last[key_id] = (now, ip or "")
            _usage.ensure_thread()
    except Exception:  # noqa: BLE001
        log.warning("usage counter unavailable; one use not counted", extra={"key_id": key_id})


def flush_usage() -> None:
    """Push this process's buffered usage to the shared store now."""
    _usage.flush()


def drain_usage() -> tuple[dict[tuple[str, int], int], dict[str, tuple[float, str]]]:
    """Take every counted use out of the store (this process's buffer first)."""
    flush_usage()
    return backend().drain()


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


# -- Per-minute traffic counters and effective limits (authserver.anomaly) --------------------------
# ``count_minute`` is called on hot paths (introspection, verification, the token endpoint): it
# only adds to an in-process buffer; a background thread flushes it to the store every second
# (losing at most a second of counts if the process dies: a side effect, it fails open).
# ``effective_limit`` answers from an in-process cache refreshed from the store at most every
# ``ANOMALY_LIMIT_CACHE_SECONDS``: never a database query, and never an error.

_traffic = _Buffered("traffic", lambda: ({}, set()), lambda counts, pairs: backend().add_traffic(counts, pairs))
_limit_cache: dict[str, tuple[float, int | None]] = {}
_limit_lock = threading.Lock()


def _minute(ts: float) -> int:
    return int(ts // 60 * 60)


def count_minute(series: str, *, pair: tuple[str, str] | None = None, n: int = 1) -> None:
    """Count ``n`` events of ``series`` in the current minute (and remember a key/network pair). Never raises."""
    try:
        bucket = (series, _minute(time.time()))
        with _traffic.lock:
            counts, pairs = _traffic.state
            counts[bucket] = counts.get(bucket, 0) + n
            if pair is not None and len(pairs) < 100_000:
                pairs.add(pair)
            _traffic.ensure_thread()
    except Exception:  # noqa: BLE001 - a side effect
        log.warning("traffic counter unavailable; one event not counted")


def flush_traffic() -> None:
    """Push this process's buffered traffic counts to the shared store now (pending events first)."""
    from authserver import events

    events.deliver_all()
    _traffic.flush()


def drain_traffic() -> tuple[dict[tuple[str, int], int], set[tuple[str, str]]]:
    """Take every counted ``(series, minute) -> n`` and ``(key_id, network)`` pair out of the store."""
    flush_traffic()
    return backend().drain_traffic()


def publish_limits(limits: dict[str, int | None]) -> None:
    """Store effective per-minute limits by subject (None removes one). Raises on store errors."""
    if limits:
        backend().set_limits(limits)
    with _limit_lock:
        for subject in limits:
            _limit_cache.pop(subject, None)


def effective_limit(subject: str) -> int | None:
    """The published per-minute limit of ``subject`` (None: none), cached in-process. Never raises."""
    now = time.monotonic()
    cached = _limit_cache.get(subject)
    if cached is not None and cached[0] > now:
        return cached[1]
    ttl = float(getattr(settings, "ANOMALY_LIMIT_CACHE_SECONDS", 30))
    try:
        value = backend().get_limit(subject)
    except Exception:  # noqa: BLE001 - no adaptive limit rather than no answer
        log.warning("effective limits unavailable; static limits apply")
        value = None
    if ttl > 0:
        if len(_limit_cache) > 100_000:
            _limit_cache.clear()
        _limit_cache[subject] = (now + ttl, value)
    return value


def reset_for_tests() -> None:
    global _backend
    _usage.clear()  # the flush thread must not write a previous test's counts later
    _backend = None


def wipe_for_tests() -> None:
    """Forget every count (usage, quotas, rate windows) in whichever store is configured."""
    store = backend()
    if isinstance(store, RedisCounters):
        for pattern in ("authserver:rl:*", "authserver:quota:*", "authserver:usage*", "authserver:lastused*",
                        "authserver:traffic*", "authserver:keynets*", "authserver:limits*"):
            keys = list(store.redis.scan_iter(pattern, count=1000))
            if keys:
                store.redis.delete(*keys)
    else:
        db = store._connect()
        db.execute("BEGIN IMMEDIATE")
        for table in ("usage", "last_used", "quota", "rate", "traffic", "keynets", "limits"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        db.execute("COMMIT")
