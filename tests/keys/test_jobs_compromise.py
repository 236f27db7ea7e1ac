"""The compromise-response job on a real Celery worker, SIGKILLed midway: the decision holds for
every credential at once, and the sweep resumes the job to the same end, idempotently.

Nothing is mocked. The worker tests give the worker and this process a broker of their own (see
``tests/keys/conftest.py``), so a worker started by a concurrent test run never takes our tasks.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from authserver import credentials, revocation
from authserver.oauth.models import AccessToken, RefreshToken
from keys import jobs, services, tasks
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse, CompromiseResponseStatus
from keys.services import api_key_create, compromise_response_start
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE, make_client, make_resource_server
from tests.helpers import client_credentials, introspect
from tests.keys.conftest import BATCH_SIZE, STALE_SECONDS, credential_state, restart_worker, wait_for


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
    bystander_before = credential_state(bystander)

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

    wait_for(progressed, "the job's first batches", worker, interval=0.02)
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
    restart_worker(worker)
    wait_for(lambda: str(response.pk) in jobs.compromise_responses_stalled(stale_after=STALE_SECONDS),
              "the response to look stale", worker)
    tasks.reconcile.delay()
    done = wait_for(lambda: CompromiseResponse.objects.filter(pk=response.pk, status=CompromiseResponseStatus.DONE)
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
    assert credential_state(bystander) == bystander_before
    log = worker.log_path.read_text(errors="replace")
    assert re.search(r'keys\.reconcile\[[-0-9a-f]+\] succeeded in [0-9.]+s: 1"', log), "reconcile found it"
    assert re.search(r"keys\.compromise_response_finish\[[-0-9a-f]+\] succeeded", log), "and the rerun finished"

    # Running it again changes nothing: as-is (finished), and as a duplicate delivery that started
    # before the first run recorded "done".
    before = credential_state(victim, bystander)
    counts = done.counts
    assert services.compromise_response_finish(response_id=str(response.pk)) == counts
    assert credential_state(victim, bystander) == before
    CompromiseResponse.objects.filter(pk=response.pk).update(status=CompromiseResponseStatus.RUNNING)
    assert services.compromise_response_finish(response_id=str(response.pk)) == counts
    assert credential_state(victim, bystander) == before
    again = CompromiseResponse.objects.get(pk=response.pk)
    assert again.status == CompromiseResponseStatus.DONE and again.counts == counts
    # ...and on the real worker too.
    result = tasks.compromise_response_finish.delay(str(response.pk))
    wait_for(lambda: f"[{result.id}] succeeded" in worker.log_path.read_text(errors="replace"),
              "the duplicate run on the worker", worker)
    assert credential_state(victim, bystander) == before
