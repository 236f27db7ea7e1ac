"""The revocation stream (C7) against the real server over TLS, read by a plain HTTP client: a token
revoked at /oauth/revoke reaches the stream within 1 s, and a stream killed midway and resumed with
``Last-Event-ID`` misses nothing that was revoked while it was down."""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.server import RunningServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.once]  # PostgreSQL + Redis: the production path (CI pass 2)

AUDIENCE = "https://stream-api.example.test"
LIMIT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("stream-data")), "--no-beat", "--no-worker")
    try:
        yield running
    finally:
        assert running.stop() == 0, "".join(running.output)[-3000:]


@pytest.fixture(scope="module")
def registered(server: RunningServer) -> dict[str, dict[str, object]]:
    server.manage("scope", "create", "ai.infer", "--description", "Run inference")
    rs = server.manage("client", "create", "--name", "Stream API", "--type", "confidential",
                       "--grant", "client_credentials", "--resource-server", AUDIENCE)
    svc = server.manage("client", "create", "--name", "Stream batch", "--type", "confidential",
                        "--grant", "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE)
    return {"rs": rs, "svc": svc}


class Stream:
    """A consumer: reads the stream on a thread and hands over each dispatched event."""

    def __init__(self, server: RunningServer, rs: dict[str, object], last_event_id: str | None = None) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(f"{server.base_url}/oauth/revocations", headers=headers, stream=True,
                                     auth=(str(rs["client_id"]), str(rs["client_secret"])), verify=server.cert,
                                     timeout=10)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"] == "text/event-stream"
        assert self.response.headers["X-Accel-Buffering"] == "no"
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.heartbeats = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = ""
        try:
            for chunk in self.response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    if block == ": hb":
                        self.heartbeats += 1
                    fields = dict(line.split(": ", 1) for line in block.split("\n") if line.startswith(("id", "ev", "da")))
                    if fields:
                        self.events.put(fields)
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by the test

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.response.close()


def _token(server: RunningServer, svc: dict[str, object]) -> str:
    response = requests.post(f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(str(svc["client_id"]), str(svc["client_secret"])), verify=server.cert, timeout=15)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _revoke(server: RunningServer, svc: dict[str, object], token: str) -> None:
    response = requests.post(f"{server.base_url}/oauth/revoke", data={"token": token},
                             auth=(str(svc["client_id"]), str(svc["client_secret"])), verify=server.cert, timeout=15)
    assert response.status_code == 200, response.text


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _until_digest(stream: Stream, digests: set[str], timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Events until every one of ``digests`` was seen; and when the last of them arrived."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    missing = set(digests)
    while missing:
        event = stream.next(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(event)
        if event["event"] == "revocation":
            missing.discard(json.loads(event["data"]).get("digest"))
    return seen, time.monotonic()


def test_a_revoked_token_reaches_the_stream_within_a_second(server, registered):
    rs, svc = registered["rs"], registered["svc"]
    token = _token(server, svc)
    stream = Stream(server, rs)
    try:
        assert stream.next()["event"] == "reset"  # a fresh consumer starts from a clean cache
        _revoke(server, svc, token)
        returned = time.monotonic()
        seen, arrived = _until_digest(stream, {_digest(token)}, timeout=5)
        assert arrived - returned < LIMIT, arrived - returned
        assert all(token not in json.dumps(event) for event in seen)
    finally:
        stream.close()


def test_a_stream_killed_and_resumed_misses_nothing(server, registered):
    rs, svc = registered["rs"], registered["svc"]
    stream = Stream(server, rs)
    first = _token(server, svc)
    try:
        assert stream.next()["event"] == "reset"
        _revoke(server, svc, first)
        seen, _ = _until_digest(stream, {_digest(first)}, timeout=5)
        last_id = seen[-1]["id"]
    finally:
        stream.close()  # killed midway
    # Revoked while no stream is open.
    missed = [_token(server, svc) for _ in range(3)]
    for token in missed:
        _revoke(server, svc, token)
    resumed = Stream(server, rs, last_event_id=last_id)
    try:
        seen, _ = _until_digest(resumed, {_digest(token) for token in missed}, timeout=5)
        assert all(event["event"] == "revocation" for event in seen)  # resumed: no reset
        ids = [int(event["id"]) for event in seen]
        assert ids == sorted(ids) and ids[0] > int(last_id)
    finally:
        resumed.close()
