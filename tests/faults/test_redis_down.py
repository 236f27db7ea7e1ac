"""Fault: Redis dies under a running server, then comes back.

Documented fail modes (README, "Rate limits"): login refuses with 503 (never unlimited password
guessing); a revocation that can't be fanned out to every worker's cache answers 503 and is rolled
back; token issuance and introspection keep working (limits fall back to per-process windows and
the in-process cache is bypassed). Everything recovers when Redis returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.server import ADMIN_PASSWORD, RunningServer, start_server
from tests.faults.redis import ThrowawayRedis

pytestmark = [pytest.mark.e2e, pytest.mark.once]
AUDIENCE = "https://chat-api.example.test"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def server(redis_server: ThrowawayRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("redis-fault")), "--no-worker", "--no-beat",
                           env_overrides={"REDIS_URL": redis_server.url})
    try:
        yield running
    finally:
        running.stop()


def _login(server: RunningServer, password: str) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{server.base_url}/accounts/login/", verify=server.cert, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(f"{server.base_url}/accounts/login/", verify=server.cert, timeout=10, allow_redirects=False,
                        data={"csrfmiddlewaretoken": csrf, "username": "admin", "password": password},
                        headers={"Referer": f"{server.base_url}/accounts/login/"})


def test_documented_fail_modes_and_recovery(server: RunningServer, redis_server: ThrowawayRedis):
    server.manage("scope", "create", "ai.infer")
    rs = server.manage("client", "create", "--name", "API", "--type", "confidential", "--grant",
                       "client_credentials", "--resource-server", AUDIENCE)
    svc = server.manage("client", "create", "--name", "svc", "--type", "confidential", "--grant",
                        "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE)

    def token() -> requests.Response:
        return requests.post(f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(svc["client_id"], svc["client_secret"]), verify=server.cert, timeout=15)

    def introspect(value: str) -> requests.Response:
        return requests.post(f"{server.base_url}/oauth/introspect", data={"token": value},
                             auth=(rs["client_id"], rs["client_secret"]), verify=server.cert, timeout=15)

    def revoke(value: str) -> requests.Response:
        return requests.post(f"{server.base_url}/oauth/revoke", data={"token": value},
                             auth=(svc["client_id"], svc["client_secret"]), verify=server.cert, timeout=15)

    assert _login(server, ADMIN_PASSWORD).status_code == 302
    kept = token().json()["access_token"]
    assert introspect(kept).json()["active"] is True

    redis_server.kill()
    assert _login(server, ADMIN_PASSWORD).status_code == 503, "login fails closed"
    issued = token()
    assert issued.status_code == 200, "token issuance stays available (per-process limits)"
    assert issued.headers["RateLimit-Policy"]
    fresh = issued.json()["access_token"]
    assert introspect(fresh).json()["active"] is True, "introspection answers from the database"
    refused = revoke(fresh)
    assert refused.status_code == 503, "a revocation that can't reach every worker is not reported done"
    assert introspect(fresh).json()["active"] is True, "...and was rolled back"

    redis_server.start()
    # Recovery: each web worker finds Redis again on its own (its store's breaker, its pooled
    # connections), so the login is retried until one answers, within the deadline; a 503 in
    # between is the fail-closed answer, never a login.
    deadline = time.monotonic() + 15
    while (status := _login(server, ADMIN_PASSWORD).status_code) == 503 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status == 302
    assert revoke(fresh).status_code == 200
    assert introspect(fresh).json() == {"active": False}
    assert introspect(kept).json()["active"] is True
