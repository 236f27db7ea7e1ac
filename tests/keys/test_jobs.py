"""The API-key jobs, with real processes: a real Celery worker (SIGKILLed midway where it matters),
a real HTTP receiver for webhooks, the real counter store shared with the worker.

Nothing is mocked. The worker tests give the worker and this process a broker of their own (a
filesystem broker in a data directory of this test's own, or a Redis database of its own), so a
worker started by a concurrent test run never takes our tasks, ours never takes theirs, and no
other run wipes or drains the usage counters under us.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from authserver import counters, credentials, revocation
from authserver.celery import app as celery_app
from authserver.oauth.models import AccessToken, RefreshToken
from keys import jobs, tasks
from keys.models import ApiKey, ApiKeyStatus, ApiKeyUsage, CompromiseResponse, CompromiseResponseStatus
from keys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_suspend, compromise_response_start
from keys.usage import flush_usage
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE, make_client, make_resource_server
from tests.helpers import client_credentials, introspect
from tests.jobs.conftest import WorkerProcess

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
    _shared_worker.env["AUTHSERVER_COMPROMISE_BATCH_PAUSE"] = str(BATCH_PAUSE)
    if _shared_worker.proc is None or _shared_worker.proc.poll() is not None:
        _restart(_shared_worker)  # a previous test killed it and failed before restarting it
    return _shared_worker


def _wait_for(condition: Callable[[], Any], what: str, worker: WorkerProcess | None = None,
              timeout: float = WAIT, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    log = worker.log_path.read_text(errors="replace")[-3000:] if worker else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{log}")


def _restart(worker: WorkerProcess) -> None:
    """start() looks for "ready." in a log it appends to: wait for the *new* process's line."""
    before = worker.log_path.read_text(errors="replace").count("ready.")
    worker.start()
    _wait_for(lambda: worker.log_path.read_text(errors="replace").count("ready.") > before,
              "the restarted worker", worker, timeout=60, interval=0.2)


def _bulk_keys(client: Any, n: int, *, status: str = ApiKeyStatus.ACTIVE, **extra: Any) -> list[str]:
    """``n`` key rows in one statement; returns their plaintexts (only some are ever presented)."""
    plaintexts = [credentials.mint(credentials.api_key_prefix()) for _ in range(n)]
    now = timezone.now()
    ApiKey.objects.bulk_create([
        ApiKey(client=client, name=f"bulk-{i}", digest=credentials.digest(p), hint=credentials.hint(p),
               scope="ai.infer", audiences=[RS_AUDIENCE], status=status, expires=now + timedelta(days=30),
               created=now, **extra)
        for i, p in enumerate(plaintexts)
    ], batch_size=200)
    return plaintexts


def _bulk_tokens(client: Any, n: int) -> list[AccessToken]:
    tokens = []
    for _ in range(n):
        plaintext = credentials.mint(credentials.ACCESS_TOKEN)
        tokens.append(AccessToken(application=client, token="", token_checksum=credentials.digest(plaintext),
                                  hint=credentials.hint(plaintext), scope="ai.infer", resource=[RS_AUDIENCE],
                                  expires=timezone.now() + timedelta(hours=1)))
    return AccessToken.objects.bulk_create(tokens, batch_size=200)


def _state(*clients: Any) -> dict[str, Any]:
    """Everything the compromise job may touch, for before/after comparisons."""
    return {
        "keys": sorted((str(r["id"]), r["status"], r["revoked"], r["version"], r["grace_ends"])
                       for r in ApiKey.objects.filter(client__in=clients).values()),
        "access_tokens": sorted(AccessToken.objects.filter(application__in=clients).values_list("pk", "expires")),
        "refresh_tokens": sorted(RefreshToken.objects.filter(application__in=clients)
                                 .values_list("pk", "revoked", "access_token_id")),
    }


# -- Compromise response -------------------------------------------------------------------------
def test_compromise_response_survives_a_worker_killed_midway(worker, client):
    victim, victim_secret = make_client(name="compromised", scopes=["ai.infer"])
    bystander, _ = make_client(name="bystander", scopes=["ai.infer"])
    rs, rs_secret = make_resource_server()
    owner = get_user_model().objects.create(username="victim-user")

    active = _bulk_keys(victim, 280)
    suspended = _bulk_keys(victim, 15, status=ApiKeyStatus.SUSPENDED, suspended=timezone.now())
    earlier = timezone.now() - timedelta(days=1)
    already_revoked = _bulk_keys(victim, 3, status=ApiKeyStatus.REVOKED, revoked=earlier)
    issued = [client_credentials(client, victim, victim_secret, scope="ai.infer").json()["access_token"]
              for _ in range(3)]
    bulk = _bulk_tokens(victim, 57)
    RefreshToken.objects.bulk_create([
        RefreshToken(application=victim, user=owner, token="",
                     token_checksum=credentials.digest(credentials.mint(credentials.REFRESH_TOKEN)), access_token=at)
        for at in bulk[:10]
    ])
    bystander_keys = _bulk_keys(bystander, 30)
    _bulk_tokens(bystander, 5)
    live_before = ApiKey.objects.filter(client=victim, status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED]).count()
    tokens_before = AccessToken.objects.filter(application=victim).count()
    assert (live_before, tokens_before) == (295, 60)
    bystander_before = _state(bystander)

    # Warm this process's verification cache, so the decision must also beat cached answers.
    for plaintext in active[:5]:
        assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True
    for token in issued:
        assert introspect(client, rs, rs_secret, token).json()["active"] is True
    assert revocation.api_keys._entries and revocation.access_tokens._entries

    response = compromise_response_start(client=victim, actor="incident-response")  # enqueued on commit
    cutoff = CompromiseResponse.objects.get(pk=response.pk).requested
    late_key, late_plaintext = api_key_create(client=victim, name="issued after the decision")

    def progressed() -> CompromiseResponse | None:
        row = CompromiseResponse.objects.get(pk=response.pk)
        assert row.status != CompromiseResponseStatus.DONE, "the job finished before it could be interrupted"
        return row if row.counts.get("api_keys", 0) >= 2 * BATCH_SIZE else None

    _wait_for(progressed, "the job's first batches", worker, interval=0.02)
    worker.kill()

    interrupted = CompromiseResponse.objects.get(pk=response.pk)
    assert interrupted.status == CompromiseResponseStatus.RUNNING and interrupted.heartbeat is not None
    assert 2 * BATCH_SIZE <= interrupted.counts["api_keys"] < live_before
    still_live = ApiKey.objects.filter(client=victim, status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED],
                                       created__lte=cutoff).count()
    assert still_live == live_before - interrupted.counts["api_keys"] > 0, "the kill did not land midway"

    # The decision is already in force for every credential created up to it, whatever the job did.
    for plaintext in active + suspended + already_revoked:
        assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}
    for plaintext in active[:5] + suspended[:2]:
        assert introspect(client, rs, rs_secret, plaintext).json() == {"active": False}
    for token in issued:
        assert introspect(client, rs, rs_secret, token).json() == {"active": False}
    assert client_credentials(client, victim, victim_secret, scope="ai.infer").status_code == 200, \
        "the client itself is not disabled, only what it held at the decision"
    assert api_key_verify(key=late_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True
    for plaintext in bystander_keys[:5]:
        assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True

    # The killed task is gone (filesystem broker: no redelivery; Redis: not before the visibility
    # timeout). The reconciliation sweep finds the response stale and enqueues it again. The
    # restarted worker runs without the test pause, like production.
    worker.env["AUTHSERVER_COMPROMISE_BATCH_PAUSE"] = "0"
    _restart(worker)
    _wait_for(lambda: str(response.pk) in jobs.compromise_responses_stalled(stale_after=STALE_SECONDS),
              "the response to look stale", worker)
    tasks.reconcile.delay()
    done = _wait_for(lambda: CompromiseResponse.objects.filter(pk=response.pk, status=CompromiseResponseStatus.DONE)
                     .first(), "the resumed job to finish", worker)

    assert done.finished is not None and done.heartbeat is not None
    assert done.counts == {"api_keys": 295, "refresh_tokens": 10, "access_tokens": 60}
    keys_now = ApiKey.objects.filter(client=victim).exclude(pk=late_key.pk)
    assert keys_now.count() == 298
    assert set(keys_now.values_list("status", flat=True)) == {ApiKeyStatus.REVOKED}
    assert not keys_now.filter(revoked__isnull=True).exists()
    assert keys_now.filter(revoked=earlier).count() == 3, "already-revoked keys keep their revocation time"
    assert set(keys_now.exclude(revoked=earlier).values_list("version", flat=True)) == {2}
    assert ApiKey.objects.get(pk=late_key.pk).status == ApiKeyStatus.ACTIVE
    assert not AccessToken.objects.filter(application=victim, created__lte=cutoff).exists()
    assert AccessToken.objects.filter(application=victim).count() == 1  # the one issued after the decision
    assert not RefreshToken.objects.filter(application=victim, revoked__isnull=True).exists()
    assert _state(bystander) == bystander_before
    log = worker.log_path.read_text(errors="replace")
    assert re.search(r"keys\.reconcile\[[-0-9a-f]+\] succeeded in [0-9.]+s: 1\n", log), "reconcile found it"
    assert re.search(r"keys\.compromise_response_finish\[[-0-9a-f]+\] succeeded", log), "and the rerun finished"

    # Running it again changes nothing: as-is (finished), and as a duplicate delivery that started
    # before the first run recorded "done".
    before = _state(victim, bystander)
    counts = done.counts
    assert jobs.compromise_response_finish(response_id=str(response.pk)) == counts
    assert _state(victim, bystander) == before
    CompromiseResponse.objects.filter(pk=response.pk).update(status=CompromiseResponseStatus.RUNNING)
    assert jobs.compromise_response_finish(response_id=str(response.pk)) == counts
    assert _state(victim, bystander) == before
    again = CompromiseResponse.objects.get(pk=response.pk)
    assert again.status == CompromiseResponseStatus.DONE and again.counts == counts
    # ...and on the real worker too.
    result = tasks.compromise_response_finish.delay(str(response.pk))
    _wait_for(lambda: f"[{result.id}] succeeded" in worker.log_path.read_text(errors="replace"),
              "the duplicate run on the worker", worker)
    assert _state(victim, bystander) == before


# -- Expiry warnings -----------------------------------------------------------------------------
class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def verify_webhook_signature(header: str, body: bytes, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: ``t=<unix>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``, recent t only."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(jobs.webhook_signing_key(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


@pytest.mark.django_db
def test_expiry_warnings_signed_webhook_and_email_once(settings, webhook_receiver, key_owner):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    port = webhook_receiver.server_address[1]
    key_owner.webhook_url = f"http://127.0.0.1:{port}/hooks/authserver"
    key_owner.contact_email = "ops@customer.example"
    key_owner.full_clean()
    key_owner.save(update_fields=["webhook_url", "contact_email"])
    quiet, _ = make_client(name="no contact")  # warned (recorded) but nobody to tell

    soon, soon_plaintext = api_key_create(client=key_owner, name="prod-eu", expires_in=timedelta(days=2))
    api_key_create(client=key_owner, name="far", expires_in=timedelta(days=60))
    revoked, _ = api_key_create(client=key_owner, name="revoked", expires_in=timedelta(days=2))
    api_key_revoke(key=revoked)
    suspended, _ = api_key_create(client=key_owner, name="suspended", expires_in=timedelta(days=2))
    api_key_suspend(key=suspended)
    rotated, _ = api_key_create(client=key_owner, name="rotated", expires_in=timedelta(days=60))
    api_key_rotate(key=rotated, grace=timedelta(hours=1))  # grace_ends soon: rotation, not expiry
    gone, _ = api_key_create(client=key_owner, name="gone", expires_in=timedelta(days=2))
    ApiKey.objects.filter(pk=gone.pk).update(expires=timezone.now() - timedelta(minutes=1))
    silent, _ = api_key_create(client=quiet, name="silent", expires_in=timedelta(days=1))

    started = int(time.time())
    assert jobs.expiry_warnings_send() == 2

    assert len(webhook_receiver.received) == 1
    hook = webhook_receiver.received[0]
    assert hook["path"] == "/hooks/authserver"
    assert hook["headers"]["Content-Type"] == "application/json"
    payload = json.loads(hook["body"])
    assert payload == {"type": "api_key.expiring", "key_id": str(soon.id), "key_hint": soon.hint,
                       "name": "prod-eu", "client_id": key_owner.client_id,
                       "expires": payload["expires"]}
    assert abs(datetime.fromisoformat(payload["expires"]) - soon.expires) < timedelta(seconds=1)
    signature = hook["headers"]["Authserver-Signature"]
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert started <= timestamp <= time.time()
    assert signature == jobs.sign_webhook(hook["body"], timestamp)
    assert verify_webhook_signature(signature, hook["body"]) is True
    assert soon_plaintext not in hook["body"].decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@customer.example"]
    assert "prod-eu" in message.subject and soon.hint in message.body
    assert soon_plaintext not in message.subject + message.body

    warned = set(ApiKey.objects.filter(expiry_warned__isnull=False).values_list("pk", flat=True))
    assert warned == {soon.pk, silent.pk}

    # A second run finds nothing to say.
    assert jobs.expiry_warnings_send() == 0
    assert len(webhook_receiver.received) == 1 and len(mail.outbox) == 1


@pytest.mark.django_db  # the signing key lives in the key store
def test_webhook_signature_check_rejects_tampering():
    body = json.dumps({"type": "api_key.expiring", "key_id": "k1"}, sort_keys=True).encode()
    now = int(time.time())
    header = jobs.sign_webhook(body, now)
    assert verify_webhook_signature(header, body) is True
    assert verify_webhook_signature(header, body.replace(b"k1", b"k2")) is False  # tampered body
    assert verify_webhook_signature(header, body + b" ") is False
    forged_time = header.replace(f"t={now}", f"t={now + 1}")
    assert verify_webhook_signature(forged_time, body) is False  # the timestamp is signed too
    assert verify_webhook_signature(header, body, now=now + 3600) is False  # replayed later
    other_key = hmac.new(b"not the signing key", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify_webhook_signature(f"t={now},v1={other_key}", body) is False
    assert verify_webhook_signature("garbage", body) is False


# -- Expiry and grace ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_keys_expire_marks_expired_keys_and_is_idempotent(key_owner):
    past = timezone.now() - timedelta(seconds=1)
    expired_active, plaintext = api_key_create(client=key_owner, name="a")
    expired_suspended, _ = api_key_create(client=key_owner, name="s")
    api_key_suspend(key=expired_suspended)
    expired_revoked, _ = api_key_create(client=key_owner, name="r")
    api_key_revoke(key=expired_revoked)
    live, _ = api_key_create(client=key_owner, name="live")
    ApiKey.objects.filter(pk__in=[expired_active.pk, expired_suspended.pk, expired_revoked.pk]).update(expires=past)
    versions = dict(ApiKey.objects.values_list("pk", "version"))
    # Verification refuses the key already; the job only records it.
    assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    assert jobs.keys_expire() == 2
    status = dict(ApiKey.objects.values_list("pk", "status"))
    assert status == {expired_active.pk: ApiKeyStatus.EXPIRED, expired_suspended.pk: ApiKeyStatus.EXPIRED,
                      expired_revoked.pk: ApiKeyStatus.REVOKED, live.pk: ApiKeyStatus.ACTIVE}
    after = dict(ApiKey.objects.values_list("pk", "version"))
    assert after[expired_active.pk] == versions[expired_active.pk] + 1
    assert after[expired_revoked.pk] == versions[expired_revoked.pk] and after[live.pk] == versions[live.pk]

    assert jobs.keys_expire() == 0
    assert dict(ApiKey.objects.values_list("pk", "version")) == after


def test_grace_periods_end_on_a_real_worker(worker, key_owner):
    ended, ended_plaintext = api_key_create(client=key_owner, name="ended")
    successor, successor_plaintext = api_key_rotate(key=ended, grace=timedelta(hours=1))
    grace_end = timezone.now() - timedelta(seconds=1)
    ApiKey.objects.filter(pk=ended.pk).update(grace_ends=grace_end)
    in_grace, in_grace_plaintext = api_key_create(client=key_owner, name="in grace")
    api_key_rotate(key=in_grace, grace=timedelta(hours=1))
    version = ApiKey.objects.get(pk=ended.pk).version
    assert api_key_verify(key=ended_plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    tasks.grace_periods_end.delay()
    old = _wait_for(lambda: ApiKey.objects.filter(pk=ended.pk, status=ApiKeyStatus.REVOKED).first(),
                    "the grace job on the worker", worker)
    assert old.revoked == grace_end and old.version == version + 1
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE
    assert ApiKey.objects.get(pk=in_grace.pk).status == ApiKeyStatus.ACTIVE
    assert api_key_verify(key=successor_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True
    assert api_key_verify(key=in_grace_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True

    before = _state(key_owner)
    assert jobs.grace_periods_end()["api_keys_revoked"] == 0
    assert _state(key_owner) == before


# -- Usage roll-up -------------------------------------------------------------------------------
def test_usage_roll_up_on_a_real_worker(worker, key_owner):
    busy, busy_plaintext = api_key_create(client=key_owner, name="busy")
    calm, calm_plaintext = api_key_create(client=key_owner, name="calm")
    idle, _ = api_key_create(client=key_owner, name="idle")
    started = timezone.now()
    for _ in range(7):
        assert api_key_verify(key=busy_plaintext, audience=RS_AUDIENCE, client_ip="203.0.113.7")["active"] is True
    for _ in range(3):
        assert api_key_verify(key=calm_plaintext, audience=RS_AUDIENCE, client_ip="2001:db8::1")["active"] is True
    assert api_key_verify(key=busy_plaintext, audience="https://not-mine.example.test", client_ip=None) == {
        "active": False}  # refused: not counted
    flush_usage()  # the background flush, now rather than within a second
    assert ApiKey.objects.get(pk=busy.pk).uses == 0, "verification never writes the database"

    tasks.usage_roll_up.delay()
    _wait_for(lambda: ApiKey.objects.filter(pk=calm.pk, uses=3).exists()
              and ApiKey.objects.filter(pk=busy.pk, uses=7).exists(), "the roll-up on the worker", worker)

    rows = {k.pk: k for k in ApiKey.objects.filter(pk__in=[busy.pk, calm.pk, idle.pk])}
    assert rows[busy.pk].last_used_ip == "203.0.113.7" and rows[calm.pk].last_used_ip == "2001:db8::1"
    for pk in (busy.pk, calm.pk):
        assert started - timedelta(seconds=1) <= rows[pk].last_used <= timezone.now()
    assert rows[idle.pk].uses == 0 and rows[idle.pk].last_used is None
    per_key = {pk: sum(ApiKeyUsage.objects.filter(key_id=pk).values_list("requests", flat=True))
               for pk in (busy.pk, calm.pk, idle.pk)}
    assert per_key == {busy.pk: 7, calm.pk: 3, idle.pk: 0}
    for usage in ApiKeyUsage.objects.all():
        assert usage.hour.minute == usage.hour.second == 0
        assert started - timedelta(hours=1) < usage.hour <= timezone.now()

    # Drained: a second roll-up adds nothing.
    assert jobs.usage_roll_up() == {"keys": 0, "requests": 0}
    assert ApiKey.objects.get(pk=busy.pk).uses == 7
    assert sum(ApiKeyUsage.objects.values_list("requests", flat=True)) == 10
