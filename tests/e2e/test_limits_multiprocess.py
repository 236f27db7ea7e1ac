"""Limits hold across processes: two gunicorn workers share one counter store (Redis in the
production pass, the embedded SQLite store otherwise), hammered concurrently over fresh connections."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.server import RunningServer, start_server

pytestmark = pytest.mark.e2e
LIMIT = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    limits = json.dumps({"token.ip": [f"{LIMIT}/300", "local"], "token.client": ["100000/300", "local"]})
    running = start_server(Path(tmp_path_factory.mktemp("limits")), "--no-worker", "--no-beat",
                           env_overrides={"AUTHSERVER_RATE_LIMITS": limits})
    try:
        yield running
    finally:
        running.stop()


def test_limit_is_exact_across_two_worker_processes(server: RunningServer):
    svc = server.manage("client", "create", "--name", "svc", "--type", "confidential", "--grant",
                        "client_credentials")

    def one(_: int) -> tuple[int, str]:
        response = requests.post(f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(svc["client_id"], svc["client_secret"]), verify=server.cert, timeout=30,
                                 headers={"Connection": "close"})
        return response.status_code, response.headers.get("RateLimit", "")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(2 * LIMIT)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: LIMIT, 429: LIMIT}, statuses
