from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from authserver_rs import Config, ResourceServer

from .fake_server import ISSUER, RS_ID, RS_SECRET, FakeAuthorizationServer

NOW = 1_800_000_000.0


class Clock:
    """Wall clock (cache deadlines, alias windows) and monotonic clock (stream grace), both controllable."""

    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


@pytest.fixture
def fake() -> Iterator[FakeAuthorizationServer]:
    server = FakeAuthorizationServer()
    yield server
    server.closed = True


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_kit(fake: FakeAuthorizationServer, clock: Clock) -> Iterator[Callable[..., ResourceServer]]:
    kits: list[ResourceServer] = []

    def make(**overrides: Any) -> ResourceServer:
        options: dict[str, Any] = {
            "client_id": RS_ID, "client_secret": RS_SECRET,
            "introspection_endpoint": f"{ISSUER}/oauth/introspect",
            "revocation_events_endpoint": f"{ISSUER}/oauth/revocations",
            "path_key_endpoint": f"{ISSUER}/oauth/path-key",
            "reconnect_min": 0.01, "reconnect_max": 0.05}
        options.update(overrides)
        kit = ResourceServer(Config(**options), transport=fake.transport(), async_transport=fake.transport(),
                             clock=lambda: clock.now, monotonic=lambda: clock.mono)
        kits.append(kit)
        return kit

    yield make
    fake.closed = True
    for kit in kits:
        kit.close()


@pytest.fixture
def connected(fake: FakeAuthorizationServer) -> Callable[[ResourceServer], ResourceServer]:
    """Start the kit's stream and wait until it is caught up (the rule lets it serve cached answers)."""
    def connect(kit: ResourceServer) -> ResourceServer:
        kit.stream.start()
        wait_for(kit.stream.healthy)
        return kit
    return connect


def active(client_id: str = "app-1", scope: str = "ai.infer", exp: float = NOW + 3600, **extra: Any) -> dict[str, Any]:
    return {"active": True, "client_id": client_id, "scope": scope, "exp": int(exp), "aud": ["https://api.test"],
            "token_type": "Bearer", "sub": "42", **extra}
