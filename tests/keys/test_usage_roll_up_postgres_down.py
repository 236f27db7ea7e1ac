"""Fault (issue 12 item 2): PostgreSQL dies during a usage roll-up, then comes back.

Seen before: 50 of 50 uses lost (the roll-up emptied the counter store, then failed to write).
Now the counts stay in the store until the database has them: after the restart, one roll-up
counts every use, once. A real server counts the uses (its own counter store: the SQLite file in
its data directory, or Redis in the PostgreSQL pass); the roll-up runs as its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.server import ROOT, RunningServer, start_server
from tests.faults.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.once]
AUDIENCE = "https://chat-api.example.test"
USES = 50
ROLL_UP = "from keys.jobs import usage_roll_up; print(usage_roll_up())"


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    pg.init()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def server(postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    overrides = {"DATABASE_URL": postgres.url}
    if os.environ.get("REDIS_URL"):
        overrides["REDIS_URL"] = os.environ["REDIS_URL"]
    running = start_server(Path(tmp_path_factory.mktemp("roll-up-fault")), "--no-worker", "--no-beat",
                           env_overrides=overrides)
    try:
        yield running
    finally:
        running.stop()


def _python(server: RunningServer, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120, check=False)


def _uses(server: RunningServer, key_id: str) -> str:
    result = _python(server, f"from keys.models import ApiKey; print(ApiKey.objects.get(pk='{key_id}').uses)")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_uses_survive_a_database_failure_during_the_roll_up(server: RunningServer, postgres: ThrowawayPostgres):
    server.manage("scope", "create", "ai.infer")
    rs = server.manage("client", "create", "--name", "API", "--type", "confidential", "--grant",
                       "client_credentials", "--resource-server", AUDIENCE)
    owner = server.manage("client", "create", "--name", "owner", "--type", "confidential", "--grant",
                          "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE)
    key = server.manage("apikey", "create", "--client", str(owner["client_id"]), "--name", "busy")
    for _ in range(USES):
        answer = requests.post(f"{server.base_url}/oauth/introspect", data={"token": key["key"]},
                               auth=(rs["client_id"], rs["client_secret"]), verify=server.cert, timeout=15)
        assert answer.status_code == 200 and answer.json()["active"] is True, answer.text[:300]
    time.sleep(2.5)  # the server pushes its buffered usage to the counter store every second

    postgres.kill()
    failed = _python(server, ROLL_UP)
    assert failed.returncode != 0, failed.stdout
    assert "OperationalError" in failed.stderr
    postgres.start()

    rolled = _python(server, ROLL_UP)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert _uses(server, str(key["id"])) == str(USES), "every use counted after the database came back"
    again = _python(server, ROLL_UP)
    assert again.returncode == 0 and "'requests': 0" in again.stdout
    assert _uses(server, str(key["id"])) == str(USES), "and only once"
