"""Fault: Redis dies while API keys with learned limits are being introspected (issue 12 item 7).

Seen: busy keys answered 503 for about 23 s (the learned-limit lookup and the counting waited on a
dead Redis, with redis-py's retries), then were verified with no limit. The rule (README, "Rate
limits"): while the counter store is unreachable there is no learned limit, at once; a key limited
only by one is verified under its own static limits; a key with its own quota or rate limit can't be
counted and answers 503. Every answer comes fast, and the learned limit is back once Redis is.
"""

from __future__ import annotations

import time

import pytest

from authserver import counters
from keys.services import api_key_create
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import introspect

pytestmark = pytest.mark.django_db
FAST = 1.0  # seconds: every answer while Redis is dead


@pytest.fixture
def key_owner(db):
    client, _ = make_client(name="customer", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    return client


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_learned_limits_drop_at_once_and_come_back(client, redis_server, key_owner, resource_server):
    rs, rs_secret = resource_server
    busy, busy_key = api_key_create(client=key_owner, name="busy")
    _, quota_key = api_key_create(client=key_owner, name="quota", quota=100)
    counters.publish_limits({f"key:{busy.id}": 5})

    answer = introspect(client, rs, rs_secret, busy_key).json()
    assert answer["active"] is True and answer["rate_limit"]["limit"] == 5, "the learned limit applies"

    redis_server.kill()
    for _ in range(5):
        response, took = _timed(lambda: introspect(client, rs, rs_secret, busy_key))
        assert took < FAST, f"answered in {took:.2f} s"
        assert response.status_code == 200
        assert response.json()["active"] is True
        assert "rate_limit" not in response.json(), "no learned limit while the store is unreachable"
        response, took = _timed(lambda: introspect(client, rs, rs_secret, quota_key))
        assert took < FAST, f"answered in {took:.2f} s"
        assert response.status_code == 503, "a quota can't be counted: fail closed"
        assert response.json()["error"] == "temporarily_unavailable"
    time.sleep(1.1)  # past the breaker: the next lookup probes the dead store, still fast
    response, took = _timed(lambda: introspect(client, rs, rs_secret, busy_key))
    assert took < FAST and response.json()["active"] is True

    redis_server.start()  # without its data: publish again, as the anomaly job does every run
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            counters.publish_limits({f"key:{busy.id}": 5})
            break
        except counters.CountersUnavailable:
            time.sleep(0.2)
    deadline = time.monotonic() + 5
    answer = {}
    while time.monotonic() < deadline:
        answer = introspect(client, rs, rs_secret, busy_key).json()
        if "rate_limit" in answer:
            break
        time.sleep(0.2)
    assert answer["active"] is True and answer["rate_limit"]["limit"] == 5, "the learned limit is back"
    assert introspect(client, rs, rs_secret, quota_key).status_code == 200
