"""Fixtures of the API-key tests: a key owner, management-API callers, and a real Celery worker
for the job tests (``test_jobs_*``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from authserver import counters, revocation
from authserver.api_auth import management_api_audience
from authserver.celery import app as celery_app
from authserver.oauth.models import AccessToken, RefreshToken
from keys.api import KEYS_READ, KEYS_WRITE
from keys.models import ApiKey
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import API, client_credentials
from tests.jobs.conftest import WorkerProcess

KEYS = API + "keys"


@pytest.fixture
def key_owner(db: Any) -> Any:
    client, _ = make_client(name="customer", scopes=["ai.infer", "ai.embed"],
                            audiences=[RS_AUDIENCE, "https://other-api.example.test"])
    return client


# -- The management API (test_api_*) ---------------------------------------------------------------

def api_token(http: Any, scopes: list[str], audiences: list[str] | None = None, **extra: str) -> tuple[Any, str]:
    """A client_credentials access token of a fresh client: ``(client, token)``."""
    audiences = [management_api_audience()] if audiences is None else audiences
    app, secret = make_client(name="admin", scopes=scopes, audiences=audiences)
    response = client_credentials(http, app, secret, **extra)
    assert response.status_code == 200, response.content
    return app, response.json()["access_token"]


@pytest.fixture
def admin(client: Any) -> tuple[Any, str]:
    return api_token(client, [KEYS_READ, KEYS_WRITE])


@pytest.fixture
def owner(db: Any) -> Any:
    app, _ = make_client(name="customer", scopes=["ai.infer", "ai.embed"], audiences=[RS_AUDIENCE])
    return app


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(http: Any, url: str, token: str | None, body: Any = None, **headers: Any) -> Any:
    if token is not None:
        headers.update(bearer(token))
    return http.post(url, json.dumps(body if body is not None else {}), content_type="application/json", **headers)


def get(http: Any, url: str, token: str | None, data: dict[str, Any] | None = None, **headers: Any) -> Any:
    if token is not None:
        headers.update(bearer(token))
    return http.get(url, data or {}, **headers)


def create_key(http: Any, token: str, owner: Any, **body: Any) -> Any:
    return post(http, KEYS, token, {"client_id": owner.client_id, "name": "prod", **body})




# -- A real worker (test_jobs_*) -------------------------------------------------------------------

# Small batches with a pause between them, so that the test can kill the worker between batches.
# keys/jobs.py reads these from settings; authserver/settings.py reads them from the environment,
# which is how the worker subprocess gets them.
BATCH_SIZE = 20
BATCH_PAUSE = 0.2
STALE_SECONDS = 1
WAIT = 30.0


def _private_redis_url(url: str) -> str:
    # Databases 8-15: the suite's own Redis traffic uses 0 and the e2e server 3.
    return f"{url.rsplit('/', 1)[0]}/{8 + os.getpid() % 8}"


def _reset_producers() -> None:
    """Make this process's Celery app look its broker connection up again (the broker changed).

    Only the app's references go: kombu keeps its pools per broker (URL and transport options),
    and a pool closed here would be handed back, closed, to the next test on the same broker.
    """
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture(scope="module")
def _shared_worker(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One real Celery worker for the module (each start costs seconds), on a broker of its own.

    Built like ``tests/jobs/conftest.py``'s ``celery_worker_process`` (same test database), plus:
    the compromise-job tuning in its environment, and a broker, counter store and revocation
    generation shared by exactly this process and the worker.
    """
    from django.test import override_settings

    from tests.jobs.conftest import _database_url

    data_dir = tmp_path_factory.mktemp("jobs-data")
    tuning = {"COMPROMISE_BATCH_SIZE": BATCH_SIZE, "COMPROMISE_BATCH_PAUSE": BATCH_PAUSE,
              "COMPROMISE_STALE_SECONDS": STALE_SECONDS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({f"AUTHSERVER_{name}": str(value) for name, value in tuning.items()})
    env.update(AUTHSERVER_TESTING="1", DATABASE_URL=_database_url(), AUTHSERVER_CELERY_EAGER="0",
               PYTHONUNBUFFERED="1")
    overrides: dict[str, Any] = dict(tuning)
    previous_options = celery_app.conf.broker_transport_options
    private_redis = None
    if settings.REDIS_URL:
        # Broker, counters and generation on a Redis database of our own (Celery prefers
        # CELERY_BROKER_URL from the environment, in this process and in the worker).
        private_redis = _private_redis_url(settings.REDIS_URL)
        overrides["REDIS_URL"] = env["REDIS_URL"] = env["CELERY_BROKER_URL"] = private_redis
        env["AUTHSERVER_DATA_DIR"] = str(settings.DATA_DIR)
    else:
        # A data directory of our own for both processes: filesystem broker, counter store and
        # revocation-generation file. The key store stays the suite's.
        overrides["DATA_DIR"] = data_dir
        env["AUTHSERVER_DATA_DIR"] = str(data_dir)
        if getattr(settings, "KEYSTORE_FILE", None):
            env["AUTHSERVER_KEYSTORE_FILE"] = str(settings.KEYSTORE_FILE)
        broker = data_dir / "broker"
        for folder in ("queue", "processed", "control"):
            (broker / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        celery_app.conf.broker_transport_options = {
            "data_folder_in": str(broker / "queue"), "data_folder_out": str(broker / "queue"),
            "processed_folder": str(broker / "processed"), "store_processed": False,
            "control_folder": str(broker / "control"),
        }
    worker = WorkerProcess(env, data_dir / "worker.log")
    with override_settings(**overrides), pytest.MonkeyPatch.context() as mp:
        if private_redis:
            mp.setenv("CELERY_BROKER_URL", private_redis)
        _reset_producers()
        counters.reset_for_tests()
        revocation.reset_for_tests()
        try:
            worker.start()
            yield worker
        finally:
            # Idle by now (each test waits for its last task): a kill, rather than ~6 s of Celery
            # shutdown (the filesystem transport notices the signal late). Nothing is in flight.
            worker.kill()
            celery_app.conf.broker_transport_options = previous_options
            _reset_producers()
            counters.reset_for_tests()
            revocation.reset_for_tests()
            if private_redis:
                import redis

                db = redis.Redis.from_url(private_redis)
                # What our worker left behind (e.g. the message of the task it was killed in).
                for pattern in ("celery*", "unacked*", "_kombu.*", "authserver:*"):
                    for key in db.scan_iter(match=pattern):
                        db.delete(key)


@pytest.fixture
def worker(transactional_db: Any, _shared_worker: WorkerProcess) -> WorkerProcess:
    """The module's worker, alive, for a test whose data it must see (committed: transactional)."""
    from authserver.crypto import envelope

    # Data keys this process unwrapped for an earlier test are gone from the flushed database: the
    # worker makes new ones (e.g. for a key's last_used_ip), which this process must read, not its own.
    envelope.reset_caches()
    _shared_worker.env["AUTHSERVER_COMPROMISE_BATCH_PAUSE"] = str(BATCH_PAUSE)
    if _shared_worker.proc is None or _shared_worker.proc.poll() is not None:
        restart_worker(_shared_worker)  # a previous test killed it and failed before restarting it
    return _shared_worker


def wait_for(condition: Callable[[], Any], what: str, worker: WorkerProcess | None = None,
              timeout: float = WAIT, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    log = worker.log_path.read_text(errors="replace")[-3000:] if worker else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{log}")


def restart_worker(worker: WorkerProcess) -> None:
    """start() looks for "ready." in a log it appends to: wait for the *new* process's line."""
    before = worker.log_path.read_text(errors="replace").count("ready.")
    worker.start()
    wait_for(lambda: worker.log_path.read_text(errors="replace").count("ready.") > before,
              "the restarted worker", worker, timeout=60, interval=0.2)


def credential_state(*clients: Any) -> dict[str, Any]:
    """Everything the compromise job may touch, for before/after comparisons."""
    return {
        "keys": sorted((str(r["id"]), r["status"], r["revoked"], r["version"], r["grace_ends"])
                       for r in ApiKey.objects.filter(client__in=clients).values()),
        "access_tokens": sorted(AccessToken.objects.filter(application__in=clients).values_list("pk", "expires")),
        "refresh_tokens": sorted(RefreshToken.objects.filter(application__in=clients)
                                 .values_list("pk", "revoked", "access_token_id")),
    }
