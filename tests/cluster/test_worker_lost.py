"""(f) A worker killed (SIGKILL) in the middle of a compromise response loses nothing: the decision is
in force at once, and the reconciliation sweep (beat) has the other worker finish the job."""

from __future__ import annotations

import re

from tests.cluster.harness import set_schedule, wait_until

KEYS = 200  # in batches of 10 with a 0.4 s pause (harness.py): about 8 s of work

SETUP = """
from datetime import timedelta
from django.utils import timezone
from authserver import credentials
from clients.models import Client
from keys.models import ApiKey
from keys.services import compromise_response_start
victim = Client.objects.get(client_id=params['client_id'])
now = timezone.now()
ApiKey.objects.bulk_create([
    ApiKey(client=victim, name=f'bulk-{i}', digest=credentials.digest(p), hint=credentials.hint(p), scope='ai.infer',
           audiences=['https://cluster-api.example.test'], status='active', expires=now + timedelta(days=30),
           created=now)
    for i, p in enumerate(credentials.mint(credentials.api_key_prefix()) for _ in range(params['n']))
], batch_size=200)
result = str(compromise_response_start(client=victim, actor='cluster-test').pk)
"""

STATE = """
from keys.models import ApiKey, CompromiseResponse
row = CompromiseResponse.objects.get(pk=params['pk'])
result = {'status': row.status, 'counts': row.counts,
          'statuses': sorted(set(ApiKey.objects.filter(client=row.client).values_list('status', flat=True)))}
"""


def _runner(cluster) -> int | None:
    for n in (1, 2):
        if re.search(r"Task keys\.compromise_response_finish\[[^\]]+\] received", cluster.procs[f"worker{n}"].log()):
            return n
    return None


def test_a_worker_killed_midway_loses_no_job(cluster):
    victim = cluster.manage("client", "create", "--name", "Compromised", "--type", "confidential",
                            "--grant", "client_credentials", "--scope", "ai.infer")
    # The sweep every 2 s instead of every minute, so the test need not wait a minute.
    set_schedule(cluster, name="Reconcile unfinished jobs", task="keys.reconcile", seconds=2)
    pk = cluster.django(SETUP, client_id=victim["client_id"], n=KEYS)

    runner = wait_until(lambda: _runner(cluster), "a worker to take the job")
    wait_until(lambda: cluster.django(STATE, pk=pk)["counts"].get("api_keys", 0) >= 20, "the first batches",
               interval=0.3)
    cluster.procs[f"worker{runner}"].kill()
    interrupted = cluster.django(STATE, pk=pk)
    assert interrupted["status"] == "running" and interrupted["counts"]["api_keys"] < KEYS, interrupted

    survivor = cluster.procs[f"worker{3 - runner}"]
    done = wait_until(lambda: (state := cluster.django(STATE, pk=pk))["status"] == "done" and state,
                      "the other worker to finish the job", timeout=90, interval=1, procs=[survivor])
    assert done["counts"]["api_keys"] == KEYS and done["statuses"] == ["revoked"], done
    assert "keys.compromise_response_finish" in survivor.log()
    cluster.start_worker(runner)  # back to two workers for whatever runs next
