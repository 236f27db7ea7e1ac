"""Liveness and readiness: ``/livez``, ``/readyz`` and ``/healthz`` (an alias of ``/readyz``).

``/livez`` says the process answers HTTP and nothing more: it touches no database, Redis or key
store, so an orchestrator restarts a process only when the process itself is wedged, never because
a shared dependency is down (restarting every replica would not bring PostgreSQL back).

``/readyz`` says this process can serve traffic now: the database is reachable *and* writable (a
PostgreSQL server that failed over to a replica, or a read-only SQLite file, answers reads and
refuses every token, revocation and audit write), Redis answers when ``REDIS_URL`` is set, the key
store can wrap and unwrap a probe key, and every migration is applied (``migrate`` is its own step,
``manage.py migrate_locked``; a replica started on new code before the schema caught up stays out
of the load balancer until it has). Each check has its own short timeout so the whole answer
comes in well under a second even with a lock held elsewhere; the answer names what failed
(``{"status": "unavailable", "checks": {"database": "read-only", ...}}``) and nothing else: no
DSN, host or exception text, which can carry credentials.

Both run on the lean machine handler (``authserver.handlers.MACHINE_PATHS``): no session, CSRF or
authentication middleware.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from authserver.crypto import backends as keystore_backends
from authserver.http import NO_STORE

log = logging.getLogger("authserver.health")

# PostgreSQL: a statement that runs longer, or waits for a lock longer, is cancelled (SET LOCAL:
# for this check's transaction only). The budget: database ≤ 0.25 s, Redis ≤ 0.2 s, the first
# answer's wait for the migration graph ≤ 0.4 s, key store local or cached: under 1 s.
PG_STATEMENT_TIMEOUT = "SET LOCAL statement_timeout = '250ms'"
PG_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '100ms'"
SQLITE_BUSY_MS = 100
# The first readiness answer of a process waits this long for the migration graph (see _warm_up).
WARM_UP_WAIT = 0.4
REDIS_TIMEOUT = 0.2
# A usable key store stays usable: re-probe it (an HSM round trip) at most this often.
KEYSTORE_CACHE_SECONDS = 10.0
KEYSTORE_PROBE_AAD = b"authserver.health\0keystore-probe"

OK = "ok"
DOWN = "down"
READ_ONLY = "read-only"
TIMEOUT = "timeout"
PENDING = "pending"
STARTING = "starting"
UNKNOWN = "unknown"
UNAVAILABLE = "unavailable"
NOT_CONFIGURED = "not configured"
HEALTHY = frozenset({OK, NOT_CONFIGURED})

# PostgreSQL SQLSTATEs of a cancelled statement: query_canceled (statement_timeout) and
# lock_not_available (lock_timeout).
_TIMEOUT_SQLSTATES = frozenset({"57014", "55P03"})

_lock = threading.Lock()
_migrated: set[str] = set()  # databases whose schema was seen current (it never goes back)
_keystore_ok_until = 0.0
_redis_clients: dict[str, Redis] = {}
# Importing every migration module takes a second or more on a busy machine: a thread does it once
# per process, and until it has, the migrations check answers "starting" (not ready) at once.
_loader_warm = threading.Event()
_warm_up_started = False


def _warm_up() -> None:
    try:
        MigrationLoader(None, ignore_no_migrations=True)  # from disk only: no database
    except Exception as exc:  # the request-time check reports the real problem
        log.warning("readiness: loading migrations failed", extra={"error": type(exc).__name__})
    finally:
        _loader_warm.set()


def start_warm_up(*, wait: float = 0.0) -> bool:
    """Load the migration graph in the background (once per process); True once it is loaded."""
    global _warm_up_started
    with _lock:
        if not _warm_up_started:
            _warm_up_started = True
            threading.Thread(target=_warm_up, name="authserver-health-warm-up", daemon=True).start()
    return _loader_warm.wait(wait)


def reset() -> None:
    """Forget every cached answer (tests)."""
    global _keystore_ok_until
    with _lock:
        _migrated.clear()
        _keystore_ok_until = 0.0
        for client in _redis_clients.values():
            client.close()
        _redis_clients.clear()


# --- checks ---------------------------------------------------------------------------------------
def _failure(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _TIMEOUT_SQLSTATES:
        return TIMEOUT
    if "readonly" in str(exc) or "read-only" in str(exc):
        return READ_ONLY
    return DOWN


def migrations_check() -> str:
    """No migration left to apply on the default database (a positive answer is remembered)."""
    name = str(connection.settings_dict["NAME"])
    if name in _migrated:
        return OK
    if not start_warm_up(wait=WARM_UP_WAIT):
        return STARTING
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return PENDING
    with _lock:
        _migrated.add(name)
    return OK


def _postgresql_writable() -> str:
    # A standby (pg_is_in_recovery), or a session whose transactions start read-only (ALTER
    # DATABASE/ALTER SYSTEM ... SET default_transaction_read_only = on, as a failover tool does).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
                       "current_setting('default_transaction_read_only')")
        in_recovery, read_only, default_read_only = cursor.fetchone()
    return READ_ONLY if in_recovery or "on" in (read_only, default_read_only) else OK


def _sqlite_writable() -> str:
    """Write without leaving a trace: rewrite the header's user_version, then roll back."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        try:
            with transaction.atomic():
                cursor.execute("PRAGMA user_version")
                (version,) = cursor.fetchone()
                cursor.execute(f"PRAGMA user_version = {int(version)}")
                transaction.set_rollback(True)
        except DatabaseError as exc:
            # Another writer holds SQLite's write lock: the file is writable, this one just queued.
            if "locked" in str(exc) or "busy" in str(exc):
                return OK
            raise
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(previous)}")
    return OK


def database_checks() -> dict[str, str]:
    """``database`` (reachable and writable) and ``migrations`` (none pending)."""
    checks = {"database": UNKNOWN, "migrations": UNKNOWN}
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(PG_STATEMENT_TIMEOUT)
                    cursor.execute(PG_LOCK_TIMEOUT)
                checks["database"] = _postgresql_writable()
                checks["migrations"] = migrations_check()
                # Nothing was written; rolling back also undoes SET LOCAL inside an outer transaction.
                transaction.set_rollback(True)
        else:
            checks["database"] = _sqlite_writable()
            checks["migrations"] = migrations_check()
    except DatabaseError as exc:
        # The exception's type only: its text can name the host, the user or the DSN.
        log.warning("readiness: database check failed", extra={"error": type(exc).__name__})
        failed = "database" if checks["database"] == UNKNOWN else "migrations"
        checks[failed] = _failure(exc)
    return checks


def _redis_client(url: str) -> Redis:
    with _lock:
        client = _redis_clients.get(url)
        if client is None:
            client = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT,
                                    retry=Retry(NoBackoff(), 0), health_check_interval=0)
            _redis_clients[url] = client
        return client


def redis_check() -> str:
    url = settings.REDIS_URL
    if not url:
        return NOT_CONFIGURED
    try:
        _redis_client(url).ping()
    except (RedisError, OSError) as exc:
        log.warning("readiness: redis check failed", extra={"error": type(exc).__name__})
        return DOWN
    return OK


def keystore_check() -> str:
    """The current KEK wraps and unwraps a random probe key; nothing is stored or created."""
    global _keystore_ok_until
    if time.monotonic() < _keystore_ok_until:
        return OK
    try:
        store = keystore_backends.get_keystore()
        version = store.current_version()
        probe = secrets.token_bytes(32)
        if store.unwrap(version, store.wrap(version, probe, KEYSTORE_PROBE_AAD), KEYSTORE_PROBE_AAD) != probe:
            return UNAVAILABLE
    except Exception as exc:  # any failure of any backend (file, PKCS#11 library) means not ready
        log.warning("readiness: key store check failed", extra={"error": type(exc).__name__})
        return UNAVAILABLE
    _keystore_ok_until = time.monotonic() + KEYSTORE_CACHE_SECONDS
    return OK


def readiness() -> dict[str, Any]:
    checks = {**database_checks(), "redis": redis_check(), "keystore": keystore_check()}
    ready = all(value in HEALTHY for value in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}


# --- views ----------------------------------------------------------------------------------------
def livez(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"}, headers=NO_STORE)


def readyz(request: HttpRequest) -> HttpResponse:
    body = readiness()
    if body["status"] == "ok":
        return JsonResponse(body, headers=NO_STORE)
    return JsonResponse(body, status=503, headers={**NO_STORE, "Retry-After": "5"})


healthz = readyz
