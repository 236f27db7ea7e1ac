"""The counter store in an SQLite file (no ``REDIS_URL``): shared by every process of one host.

WAL mode lets readers run beside the one writer; every write is a ``BEGIN IMMEDIATE`` transaction,
so increments from many processes and threads serialise instead of losing updates. Table names are
those earlier releases used and tally rows are written by position, so an existing file keeps its
counts (rate limits moved from fixed windows in ``rate`` to sliding ones in ``slide``: an upgrade
forgets at most one window).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from authserver.counters.store import Batch, CountersUnavailable, Hit, QuotaTake, Tally, WindowHit, buckets, sliding

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota (key_id TEXT PRIMARY KEY, used INTEGER);
CREATE TABLE IF NOT EXISTS rate (key_id TEXT, window INTEGER, n INTEGER, PRIMARY KEY (key_id, window));
CREATE TABLE IF NOT EXISTS slide (key_id TEXT, bucket INTEGER, n INTEGER, PRIMARY KEY (key_id, bucket));
CREATE TABLE IF NOT EXISTS limits (subject TEXT PRIMARY KEY, lim INTEGER);
CREATE TABLE IF NOT EXISTS quota_lease (key_id TEXT PRIMARY KEY, used INTEGER, lease INTEGER, nonce TEXT NOT NULL);
"""


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()  # sqlite3 connections are not shared between threads
        self._tables_lock = threading.Lock()
        self._tallies_ready: set[Tally] = set()
        self._connect().executescript(_SCHEMA)  # its own transaction: executescript commits first
        path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite failure becomes CountersUnavailable."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CountersUnavailable(str(exc)) from exc

    def _tables(self, tally: Tally) -> None:
        """Create the tally's tables the first time this store meets it."""
        if tally in self._tallies_ready:
            return
        with self._tables_lock, self._write() as db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {tally.counts} "
                       "(name TEXT, bucket INTEGER, n INTEGER, PRIMARY KEY (name, bucket))")
            if tally.latest:
                db.execute(f"CREATE TABLE IF NOT EXISTS {tally.latest} (name TEXT PRIMARY KEY, ts REAL, value TEXT)")
            if tally.pairs:
                db.execute(f"CREATE TABLE IF NOT EXISTS {tally.pairs} (a TEXT, b TEXT, PRIMARY KEY (a, b))")
            # Pending batches (stage/settle): the same columns after the batch id.
            db.execute(f"CREATE TABLE IF NOT EXISTS {tally.counts}_pending "
                       "(batch TEXT, name TEXT, bucket INTEGER, n INTEGER)")
            if tally.latest:
                db.execute(f"CREATE TABLE IF NOT EXISTS {tally.latest}_pending "
                           "(batch TEXT, name TEXT, ts REAL, value TEXT)")
            if tally.pairs:
                db.execute(f"CREATE TABLE IF NOT EXISTS {tally.pairs}_pending (batch TEXT, a TEXT, b TEXT)")
            self._tallies_ready.add(tally)

    # Table names below come from a validated Tally (letters and underscores), never from input.
    def add(self, tally: Tally, batch: Batch) -> None:
        self._tables(tally)
        with self._write() as db:
            db.executemany(f"INSERT INTO {tally.counts} VALUES (?, ?, ?) "  # noqa: S608
                           "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                           [(name, bucket, n) for (name, bucket), n in batch.counts.items()])
            if tally.latest:
                db.executemany(f"INSERT INTO {tally.latest} VALUES (?, ?, ?) "  # noqa: S608
                               f"ON CONFLICT DO UPDATE SET ts = excluded.ts, value = excluded.value "
                               f"WHERE excluded.ts >= {tally.latest}.ts",
                               [(name, ts, text) for name, (ts, text) in batch.latest.items()])
            if tally.pairs:
                db.executemany(f"INSERT OR IGNORE INTO {tally.pairs} VALUES (?, ?)",  # noqa: S608
                               sorted(batch.pairs))

    def drain(self, tally: Tally) -> Batch:
        self._tables(tally)
        batch = Batch()
        with self._write() as db:
            for name, bucket, n in db.execute(f"SELECT * FROM {tally.counts}"):  # noqa: S608
                batch.count(name, int(bucket), int(n))
            db.execute(f"DELETE FROM {tally.counts}")  # noqa: S608
            if tally.latest:
                for name, ts, text in db.execute(f"SELECT * FROM {tally.latest}"):  # noqa: S608
                    batch.latest[name] = (float(ts), text)
                db.execute(f"DELETE FROM {tally.latest}")  # noqa: S608
            if tally.pairs:
                batch.pairs = {(a, b) for a, b in db.execute(f"SELECT * FROM {tally.pairs}")}  # noqa: S608
                db.execute(f"DELETE FROM {tally.pairs}")  # noqa: S608
        return batch

    # -- Exactly-once drains: stage, record in the database, settle ---------------------------------
    def stage(self, tally: Tally) -> None:
        self._tables(tally)
        batch_id = f"{time.time_ns():020d}-{secrets.token_hex(6)}"
        with self._write() as db:  # one transaction: the batch moves whole or not at all
            for table in tally.names:
                db.execute(f"INSERT INTO {table}_pending SELECT ?, * FROM {table}", (batch_id,))  # noqa: S608
                db.execute(f"DELETE FROM {table}")  # noqa: S608

    def pending(self, tally: Tally) -> dict[str, Batch]:
        self._tables(tally)
        batches: dict[str, Batch] = {}
        db = self._connect()
        try:
            db.execute("BEGIN")  # one snapshot of every table
            for batch_id, name, bucket, n in db.execute(f"SELECT * FROM {tally.counts}_pending"):  # noqa: S608
                batches.setdefault(batch_id, Batch()).count(name, int(bucket), int(n))
            if tally.latest:
                for batch_id, name, ts, text in db.execute(f"SELECT * FROM {tally.latest}_pending"):  # noqa: S608
                    batches.setdefault(batch_id, Batch()).latest[name] = (float(ts), text)
            if tally.pairs:
                for batch_id, a, b in db.execute(f"SELECT * FROM {tally.pairs}_pending"):  # noqa: S608
                    batches.setdefault(batch_id, Batch()).pairs.add((a, b))
        except sqlite3.Error as exc:
            raise CountersUnavailable(str(exc)) from exc
        finally:
            if db.in_transaction:
                db.execute("COMMIT")
        return dict(sorted(batches.items()))

    def settle(self, tally: Tally, batch_id: str) -> None:
        self._tables(tally)
        with self._write() as db:
            for table in tally.names:
                db.execute(f"DELETE FROM {table}_pending WHERE batch = ?", (batch_id,))  # noqa: S608

    # -- Quotas counted inside leased blocks (see CounterStore.quota_take) ------------------------------
    def quota_take(self, name: str, *, quota: int) -> QuotaTake:
        with self._write() as db:
            row = db.execute("SELECT used, lease, nonce FROM quota_lease WHERE key_id = ?", (name,)).fetchone()
            if row is None:
                nonce = secrets.token_hex(8)
                db.execute("INSERT INTO quota_lease VALUES (?, NULL, NULL, ?)", (name, nonce))
                return QuotaTake(0, nonce)
            used, lease, nonce = row
            if used is None:
                return QuotaTake(0, nonce)
            if used < lease:
                db.execute("UPDATE quota_lease SET used = used + 1 WHERE key_id = ?", (name,))
                return QuotaTake(used + 1)
            if lease >= quota:
                return QuotaTake(used + 1)
            return QuotaTake(0, nonce)

    def quota_grant(self, name: str, *, nonce: str, start: int, leased: int) -> bool:
        with self._write() as db:
            row = db.execute("SELECT used, lease, nonce FROM quota_lease WHERE key_id = ?", (name,)).fetchone()
            if row is None or row[2] != nonce:
                return False
            if row[0] is None:
                legacy = db.execute("SELECT used FROM quota WHERE key_id = ?", (name,)).fetchone()
                used = max(start, int(legacy[0])) if legacy else start
                db.execute("UPDATE quota_lease SET used = ?, lease = ? WHERE key_id = ?", (used, leased, name))
            elif leased > row[1]:
                db.execute("UPDATE quota_lease SET lease = ? WHERE key_id = ?", (leased, name))
            return True

    def consume(self, name: str, *, baseline: int | None, period: int | None, now: float,
                limit: int | None = None) -> Hit:
        total = count = reset = None
        with self._write() as db:
            if baseline is not None:
                # A lost counter restarts from the rolled-up count.
                db.execute("INSERT OR IGNORE INTO quota VALUES (?, ?)", (name, baseline))
                (total,) = db.execute("UPDATE quota SET used = used + 1 WHERE key_id = ? RETURNING used",
                                      (name,)).fetchone()
            if period:
                hit = self._window(db, WindowHit(name, period, limit), now)
                count, reset = hit.window_count, hit.window_reset
        return Hit(total, count, reset)

    def windows(self, hits: Sequence[WindowHit], *, now: float) -> list[Hit]:
        with self._write() as db:  # one transaction: every window of the request at one moment
            return [self._window(db, hit, now) for hit in hits]

    @staticmethod
    def _window(db: sqlite3.Connection, hit: WindowHit, now: float) -> Hit:
        """One sliding window inside the caller's write transaction (CounterStore.windows)."""
        current, oldest = buckets(now, hit.period)
        if hit.record:
            db.execute("DELETE FROM slide WHERE key_id = ? AND (bucket < ? OR bucket > ?)", (hit.name, oldest, current))
        live = dict(db.execute("SELECT bucket, n FROM slide WHERE key_id = ? AND bucket BETWEEN ? AND ?",
                               (hit.name, oldest, current)).fetchall())
        recorded = hit.record and (hit.limit is None or sum(live.values()) < hit.limit)
        if recorded:
            db.execute("INSERT INTO slide VALUES (?, ?, 1) "
                       "ON CONFLICT (key_id, bucket) DO UPDATE SET n = n + 1", (hit.name, current))
            live[current] = live.get(current, 0) + 1
        count, reset = sliding(live, now=now, period=hit.period, limit=hit.limit)
        return Hit(None, count + 1 if hit.record and not recorded else count, reset)

    def total(self, name: str) -> int | None:
        row = self._connect().execute("SELECT used FROM quota WHERE key_id = ?", (name,)).fetchone()
        return int(row[0]) if row else None

    def window_buckets(self, name: str, *, period: int, now: float) -> dict[int, int]:
        current, oldest = buckets(now, period)
        try:
            rows = self._connect().execute("SELECT bucket, n FROM slide WHERE key_id = ? AND bucket BETWEEN ? AND ?",
                                           (name, oldest, current)).fetchall()
        except sqlite3.Error as exc:
            raise CountersUnavailable(str(exc)) from exc
        return {int(b): int(n) for b, n in rows}

    def window_count(self, name: str, *, period: int, now: float) -> int:
        return sliding(self.window_buckets(name, period=period, now=now), now=now, period=period, limit=None)[0]

    def set_limits(self, limits: Mapping[str, int | None]) -> None:
        with self._write() as db:
            db.executemany("INSERT INTO limits VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET lim = excluded.lim",
                           [(subject, int(value)) for subject, value in limits.items() if value is not None])
            db.executemany("DELETE FROM limits WHERE subject = ?",
                           [(subject,) for subject, value in limits.items() if value is None])

    def get_limit(self, subject: str) -> int | None:
        row = self._connect().execute("SELECT lim FROM limits WHERE subject = ?", (subject,)).fetchone()
        return int(row[0]) if row else None

    def wipe(self, tallies: Iterable[Tally]) -> None:
        with self._write() as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                db.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names read from the file's own schema
