"""Revocation fan-out across processes: the real server, gunicorn with 2 workers, each with a warm
in-process verification cache; a revocation must reach both in well under a second.

Each worker re-reads the shared revocation generation (Redis, or a file in the data directory) at
most every 0.25 s; this measures, from the moment the revoking call returns, how long a resource
server can still be told a revoked credential is active.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

AUDIENCE = "https://fanout-api.example.test"
WORKERS = 2
POLL_INTERVAL = 0.05
STREAK = 20
LIMIT = 1.0
# The application's JSON access line carries the worker's pid: the test sees that both workers answered.
ACCESS_LINE = re.compile(r'"route": "oauth2_provider:introspect", "status": 200,.*"pid": (\d+)')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("fanout-data")), "--no-beat", "--no-worker",
                           "--workers", str(WORKERS))
    try:
        yield running
    finally:
        assert running.stop() == 0, "".join(running.output)[-3000:]


@pytest.fixture(scope="module")
def registered(server: RunningServer) -> dict[str, dict[str, object]]:
    server.manage("scope", "create", "ai.infer", "--description", "Run inference")
    rs = server.manage("client", "create", "--name", "Fan-out API", "--type", "confidential",
                       "--grant", "client_credentials", "--resource-server", AUDIENCE)
    return {
        "rs": rs,  # first: an --audience must name a registered resource server
        "svc": server.manage("client", "create", "--name", "Fan-out batch", "--type", "confidential",
                             "--grant", "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE),
    }


def _introspect(server: RunningServer, rs: dict[str, object], token: str) -> dict[str, object]:
    """One introspection over a new connection (so either worker may take it)."""
    response = requests.post(
        f"{server.base_url}/oauth/introspect", data={"token": token},
        auth=(str(rs["client_id"]), str(rs["client_secret"])), headers={"Connection": "close"},
        verify=server.cert, timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _pids(server: RunningServer) -> list[str]:
    return [m.group(1) for line in list(server.output) if (m := ACCESS_LINE.search(line))]


def _warm_every_worker(server: RunningServer, rs: dict[str, object], token: str) -> dict[str, int]:
    """Introspect until each gunicorn worker has answered (and so cached) the credential a few times.

    Requests go 4 at a time over fresh connections, so both sync workers get some. Proof comes
    from the application's access lines: the pid of the worker behind each answer.
    """
    start = len(_pids(server))
    lock = threading.Lock()
    answers: list[bool] = []

    def one(_: int) -> None:
        active = _introspect(server, rs, token)["active"] is True
        with lock:
            answers.append(active)

    per_worker: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(10):  # at most 10 x 40 requests
            list(pool.map(one, range(40)))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:  # the access log trails the answers a little
                per_worker = {}
                for pid in _pids(server)[start:]:
                    per_worker[pid] = per_worker.get(pid, 0) + 1
                if sum(per_worker.values()) >= len(answers):
                    break
                time.sleep(0.05)
            if len(per_worker) == WORKERS and min(per_worker.values()) >= 3:
                break
    assert all(answers), "the credential must be active while warming"
    assert len(per_worker) == WORKERS and min(per_worker.values()) >= 3, per_worker
    return per_worker


def _time_to_consistent_inactive(server: RunningServer, rs: dict[str, object], token: str,
                                 revoked_at: float) -> tuple[float, int, int]:
    """Poll every 50 ms on new connections until STREAK answers in a row are inactive.

    Returns (seconds from ``revoked_at`` to the first answer of that streak, active answers seen
    after the revocation, answers in all).
    """
    streak_started: float | None = None
    streak = stale = total = 0
    deadline = revoked_at + 15
    while streak < STREAK:
        assert time.monotonic() < deadline, f"still active after 15 s ({stale} stale answers)"
        sent = time.monotonic()
        active = _introspect(server, rs, token)["active"]
        received = time.monotonic()
        total += 1
        if active:
            stale += 1
            streak, streak_started = 0, None
        else:
            if streak == 0:
                streak_started = received
            streak += 1
        time.sleep(max(0.0, POLL_INTERVAL - (time.monotonic() - sent)))
    assert streak_started is not None
    return streak_started - revoked_at, stale, total


def _report(capsys: pytest.CaptureFixture[str], what: str, server: RunningServer, elapsed: float, stale: int,
            total: int, warm: dict[str, int]) -> None:
    store = "Redis" if server.env.get("REDIS_URL") else "file"
    with capsys.disabled():
        print(f"\n[fan-out] {what}: inactive everywhere {elapsed * 1000:.0f} ms after the revoking call returned "
              f"({stale} stale of {total} answers; generation store: {store}; warm workers: {warm})")


def test_api_key_revoked_by_cli_is_inactive_on_every_worker_within_a_second(server, registered, capsys):
    rs, svc = registered["rs"], registered["svc"]
    key = server.manage("apikey", "create", "--client", str(svc["client_id"]), "--name", "fan-out",
                        "--audience", AUDIENCE)
    warm = _warm_every_worker(server, rs, str(key["key"]))

    revoked = server.manage("apikey", "revoke", str(key["id"]))
    revoked_at = time.monotonic()
    assert revoked["status"] == "revoked"
    elapsed, stale, total = _time_to_consistent_inactive(server, rs, str(key["key"]), revoked_at)
    _report(capsys, "API key revoked via CLI", server, elapsed, stale, total, warm)
    assert elapsed < LIMIT


def test_access_token_revoked_over_http_is_inactive_on_every_worker_within_a_second(server, registered, capsys):
    rs, svc = registered["rs"], registered["svc"]
    auth = (str(svc["client_id"]), str(svc["client_secret"]))
    issued = requests.post(f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials",
                                                                     "scope": "ai.infer"},
                           auth=auth, verify=server.cert, timeout=10)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    warm = _warm_every_worker(server, rs, token)

    revocation = requests.post(f"{server.base_url}/oauth/revoke",
                               data={"token": token, "token_type_hint": "access_token"}, auth=auth,
                               headers={"Connection": "close"}, verify=server.cert, timeout=10)
    revoked_at = time.monotonic()
    assert revocation.status_code == 200, revocation.text
    elapsed, stale, total = _time_to_consistent_inactive(server, rs, token, revoked_at)
    _report(capsys, "access token revoked via /oauth/revoke", server, elapsed, stale, total, warm)
    assert elapsed < LIMIT
