"""The token endpoint's limits on a real Redis: how many round trips a request makes, and each
policy's failure mode when Redis dies before the request or between its two limiter calls.

Counted on the wire: every command this thread sends through redis-py's connections is recorded
(a wrapper around the connection, not a mock of Redis). Background threads (the tallies' flush)
are left out.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from redis.connection import AbstractConnection

from tests.helpers import client_credentials

pytestmark = pytest.mark.django_db


class Wire:
    """The round trips this thread makes to Redis: the command names sent in each."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.packed: list[str] = []
        self.round_trips: list[list[str]] = []
        self.after_round_trip: Any = None

    def clear(self) -> None:
        self.packed, self.round_trips = [], []


@pytest.fixture
def wire(monkeypatch) -> Wire:
    seen = Wire()
    send_command, pack_commands = AbstractConnection.send_command, AbstractConnection.pack_commands
    send = AbstractConnection.send_packed_command

    def name(args: tuple[Any, ...]) -> str:
        first = args[0]
        return (first.decode() if isinstance(first, bytes) else str(first)).upper()

    def sending_one(self, *args, **kwargs):
        if threading.get_ident() == seen.thread:
            seen.packed.append(name(args))
        return send_command(self, *args, **kwargs)

    def packing_many(self, commands):
        if threading.get_ident() == seen.thread:
            seen.packed.extend(name(tuple(command)) for command in commands)
        return pack_commands(self, commands)

    def sending(self, command, check_health=True):
        if threading.get_ident() != seen.thread:
            return send(self, command, check_health)
        seen.round_trips.append(seen.packed)
        seen.packed = []
        result = send(self, command, check_health)
        if seen.after_round_trip is not None:
            seen.after_round_trip(len(seen.round_trips))
        return result

    monkeypatch.setattr(AbstractConnection, "send_command", sending_one)
    monkeypatch.setattr(AbstractConnection, "pack_commands", packing_many)
    monkeypatch.setattr(AbstractConnection, "send_packed_command", sending)
    return seen


def _limits(settings, modes: dict[str, str]) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, **{name: ("1000/60", mode) for name, mode in modes.items()}}


def test_a_token_request_makes_two_round_trips(client, redis_server, wire, service_client):
    app, secret = service_client
    assert client_credentials(client, app, secret).status_code == 200  # connects, loads the script
    wire.clear()
    response = client_credentials(client, app, secret)
    assert response.status_code == 200
    # token.ip with the client's failure budget, then token.client once it authenticated.
    assert wire.round_trips == [["EVALSHA"], ["EVALSHA"]]
    assert '"token.ip";q=1200;w=60, "token.client";q=6000;w=60' in response["RateLimit-Policy"]


def test_a_failed_authentication_counts_in_one_more(client, redis_server, wire, service_client):
    app, secret = service_client
    assert client_credentials(client, app, secret).status_code == 200
    wire.clear()
    assert client_credentials(client, app, secret[:-1] + "x").status_code == 401
    # The checks before work, then the failure on the network's budget and on the client's own.
    assert wire.round_trips == [["EVALSHA"], ["EVALSHA"], ["EVALSHA"]]


@pytest.mark.parametrize(("token_client", "status"), [("local", 200), ("closed", 503)])
def test_redis_dying_between_the_two_calls(client, redis_server, wire, service_client, settings,
                                           token_client, status):
    _limits(settings, {"token.client": token_client})
    app, secret = service_client
    assert client_credentials(client, app, secret).status_code == 200
    wire.clear()
    wire.after_round_trip = lambda n: redis_server.kill() if n == 1 else None  # after the checks before work
    response = client_credentials(client, app, secret)
    assert response.status_code == status
    assert wire.round_trips[0] == ["EVALSHA"]
    if status == 503:
        assert response.json()["error"] == "temporarily_unavailable"


@pytest.mark.parametrize(("token_ip", "budget", "status"), [
    ("local", "local", 200), ("closed", "local", 503), ("local", "closed", 503), ("process", "local", 200),
])
def test_redis_down_before_the_request(client, redis_server, service_client, settings, token_ip, budget, status):
    _limits(settings, {"token.ip": token_ip, "token.auth_failure.ip": budget})
    app, secret = service_client
    redis_server.kill()
    response = client_credentials(client, app, secret)
    assert response.status_code == status
    if status == 200:  # token.client (local) counted per process too: the fields are still sent
        assert '"token.ip";q=1000;w=60' in response["RateLimit-Policy"]


def test_local_limits_hold_while_redis_is_down(client, redis_server, service_client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.ip": ("2/60", "local")}
    app, secret = service_client
    redis_server.kill()
    assert [client_credentials(client, app, secret).status_code for _ in range(3)] == [200, 200, 429]
