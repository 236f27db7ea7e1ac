"""/livez answers with every dependency down; /readyz names the dependency that is not ready, and
answers within a second whatever the fault; /healthz is /readyz."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.urls import resolve

from authserver import handlers, health
from authserver.crypto import keystore_ready
from tests.bench.test_machine_handler import wsgi_call

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/11"
BUDGET = 1.0


@pytest.fixture(autouse=True)
def _fresh_health(request: Any, settings: Any) -> Any:
    settings.REDIS_URL = ""
    health.reset()
    assert health.start_warm_up(wait=30)
    resolve("/readyz")  # the URLconf's first import is the process's start-up, not the probe's
    if request.node.get_closest_marker("django_db"):
        keystore_ready()  # what the migrate step does on a fresh install
    yield
    health.reset()


def probe(client: Any, path: str) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = client.get(path, secure=True)
    elapsed = time.perf_counter() - started
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content), elapsed


def refuse_connections(monkeypatch: Any) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection to server at db.internal (10.0.0.5), port 5432 failed: password=hunter2")

    wrapper = connections["default"]
    monkeypatch.setattr(wrapper, "ensure_connection", down)
    monkeypatch.setattr(wrapper, "cursor", down)


def test_livez_answers_with_every_dependency_down(client, settings, monkeypatch):
    # No django_db mark: pytest-django refuses any database access, so a 200 also proves none happened.
    refuse_connections(monkeypatch)
    settings.REDIS_URL = CLOSED_PORT_REDIS
    settings.KEYSTORE_FILE = "/nonexistent/keystore.json"
    answers = [probe(client, "/livez") for _ in range(3)]
    assert all((status, body) == (200, {"status": "ok"}) for status, body, _ in answers)
    # Waiting on any dependency would make every answer slow; one stall of a loaded machine (CI saw
    # 0.8 s once, with both passes running) makes one. The fastest of three shows no waiting.
    assert min(elapsed for _, _, elapsed in answers) < 0.1


@pytest.mark.django_db
def test_readyz_ok_when_everything_is(client):
    status, body, elapsed = probe(client, "/readyz")
    assert status == 200, body
    assert body == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "redis": "not configured",
                                               "keystore": "ok"}}
    assert elapsed < BUDGET


@pytest.mark.django_db
def test_healthz_is_readyz(client, settings):
    assert probe(client, "/healthz")[:2] == probe(client, "/readyz")[:2]
    settings.REDIS_URL = CLOSED_PORT_REDIS
    healthz, readyz = probe(client, "/healthz"), probe(client, "/readyz")
    assert healthz[:2] == readyz[:2] and healthz[0] == 503


@pytest.mark.django_db
def test_readyz_database_down_names_it_and_nothing_secret(client, monkeypatch, caplog):
    refuse_connections(monkeypatch)
    status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"] == "down"
    assert elapsed < BUDGET
    everything = json.dumps(body) + caplog.text
    for secret in ("hunter2", "db.internal", "10.0.0.5", "password"):
        assert secret not in everything


@pytest.mark.django_db
def test_readyz_read_only_database(client):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What ALTER DATABASE/ALTER SYSTEM ... SET default_transaction_read_only = on gives a
            # session; SET LOCAL ends with the test's transaction.
            cursor.execute("SET LOCAL default_transaction_read_only = on")
        else:
            cursor.execute("PRAGMA query_only = ON")  # SQLite refuses every write, as on a read-only file
    try:
        status, body, elapsed = probe(client, "/readyz")
    finally:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA query_only = OFF")
    assert status == 503 and body["checks"]["database"] == "read-only", body
    assert elapsed < BUDGET


@pytest.mark.django_db
def test_readyz_redis_down(client, settings):
    settings.REDIS_URL = CLOSED_PORT_REDIS
    status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["checks"]["redis"] == "down" and body["checks"]["database"] == "ok"
    assert elapsed < BUDGET


@pytest.mark.django_db
def test_readyz_redis_unresponsive_times_out(client, settings):
    # A listener that accepts and never answers: the socket timeout, not the OS, ends the wait.
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        settings.REDIS_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/11"
        status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["checks"]["redis"] == "down"
    assert elapsed < BUDGET


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's second pass)")
@pytest.mark.django_db
def test_readyz_redis_up(client, settings):
    settings.REDIS_URL = os.environ["REDIS_URL"]
    status, body, _ = probe(client, "/readyz")
    assert status == 200 and body["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_readyz_migration_pending(client):
    # Really unapplied (inside the test's transaction): the newest migration of the oauth app.
    executor = MigrationExecutor(connection)
    latest = max(key for key in executor.loader.graph.leaf_nodes() if key[0] == "oauth")
    MigrationRecorder(connection).record_unapplied(*latest)
    status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["checks"]["migrations"] == "pending" and body["checks"]["database"] == "ok"
    assert elapsed < BUDGET


@pytest.mark.django_db
def test_readyz_is_starting_until_the_migration_graph_is_loaded(client, monkeypatch):
    monkeypatch.setattr(health, "_loader_warm", health.threading.Event())
    monkeypatch.setattr(health, "_warm_up_started", True)
    status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["checks"]["migrations"] == "starting" and elapsed < BUDGET


@pytest.mark.django_db
def test_readyz_migrations_pending_by_plan(client, monkeypatch):
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("a migration", False)])
    status, body, _ = probe(client, "/readyz")
    assert status == 503 and body["checks"]["migrations"] == "pending"


@pytest.mark.django_db
def test_readyz_remembers_current_schema(client, monkeypatch):
    assert probe(client, "/readyz")[0] == 200
    monkeypatch.setattr(MigrationExecutor, "__init__", lambda *a, **k: pytest.fail("schema checked again"))
    assert probe(client, "/readyz")[0] == 200


@pytest.mark.django_db
@pytest.mark.parametrize("keystore", ["missing", "corrupt"])
def test_readyz_key_store_unusable(client, settings, tmp_path, keystore):
    path = tmp_path / "keystore.json"
    if keystore == "corrupt":
        path.write_text("{not json")
        path.chmod(0o600)
    settings.KEYSTORE_FILE = path
    status, body, elapsed = probe(client, "/readyz")
    assert status == 503 and body["checks"]["keystore"] == "unavailable" and body["checks"]["database"] == "ok"
    assert elapsed < BUDGET


@pytest.mark.django_db
def test_readyz_rechecks_a_failed_key_store(client, settings, tmp_path):
    good = settings.KEYSTORE_FILE
    settings.KEYSTORE_FILE = tmp_path / "missing.json"
    assert probe(client, "/readyz")[0] == 503
    settings.KEYSTORE_FILE = good
    assert probe(client, "/readyz")[0] == 200


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                    reason="needs PostgreSQL (CI's second pass)")
@pytest.mark.django_db
def test_readyz_answers_fast_with_a_lock_held_elsewhere(client):
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        status, body, elapsed = probe(client, "/readyz")
    finally:
        other.rollback()
        other.close()
    assert status == 503 and body["checks"] == {**body["checks"], "database": "ok", "migrations": "timeout"}
    assert elapsed < BUDGET


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_probes_run_on_the_lean_handler(path, monkeypatch):
    monkeypatch.delenv("AUTHSERVER_BENCH_BASELINE", raising=False)
    assert path in handlers.MACHINE_PATHS
    status, headers, body = wsgi_call(handlers.Dispatcher(), path, method="GET")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "set-cookie" not in headers and "vary" not in headers


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_over_plain_http_are_not_redirected(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path).status_code == 200
