"""The revocation stream over a real loopback socket (a threaded WSGI server): real httpx streaming,
a silent stall detected by stream_grace and the read timeout, and resume with Last-Event-ID."""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from authserver_rs import Config, InvalidToken, ResourceServer

from .conftest import active, wait_for
from .fake_server import RS_ID, RS_SECRET


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class SSEServer:
    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.live: list[queue.Queue[bytes]] = []
        self.stalled = threading.Event()
        self.closed = threading.Event()
        self.revoked: set[str] = set()
        self.introspections = 0
        self.last_event_ids: list[str | None] = []

    def revoke(self, token: str) -> None:
        self.revoked.add(token)
        digest = hashlib.sha256(token.encode()).hexdigest()
        data = json.dumps({"kind": "access_token", "digest": digest, "at": time.time()})
        chunk = f"id: {len(self.events) + 1}\nevent: revocation\ndata: {data}\n\n".encode()
        self.events.append(chunk)
        for q in self.live:
            q.put(chunk)

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/oauth/introspect":
            self.introspections += 1
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
            token = body.split("token=")[1].split("&")[0]
            answer = {"active": False} if token in self.revoked else active()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        last = environ.get("HTTP_LAST_EVENT_ID")
        self.last_event_ids.append(last)
        start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
        q: queue.Queue[bytes] = queue.Queue()
        if last is not None:
            for chunk in self.events[int(last):]:
                q.put(chunk)
        else:
            q.put(f"id: {len(self.events)}\nevent: reset\ndata: {{}}\n\n".encode())
        self.live.append(q)
        return self._stream(q)

    def _stream(self, q):
        yield b"retry: 1000\n\n"
        while not self.closed.is_set():
            if self.stalled.is_set():  # silent: the connection stays open, nothing is written
                time.sleep(0.05)
                continue
            try:
                yield q.get(timeout=0.1)
            except queue.Empty:
                yield b": hb\n\n"


@pytest.fixture
def sse():
    app = SSEServer()
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    kit = ResourceServer(Config(client_id=RS_ID, client_secret=RS_SECRET,
                                introspection_endpoint=f"{base}/oauth/introspect",
                                revocation_events_endpoint=f"{base}/oauth/revocations",
                                stream_grace=1.2, reconnect_min=0.05, reconnect_max=0.2))
    yield app, kit
    app.closed.set()
    kit.close()
    server.shutdown()
    server.server_close()


def test_revocation_over_a_real_stream(sse):
    app, kit = sse
    kit.start()
    wait_for(kit.stream.healthy)
    kit.authenticate("at_one", None)
    kit.authenticate("at_one", None)
    assert app.introspections == 1
    app.revoke("at_one")
    wait_for(lambda: len(kit.cache) == 0)
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)


def test_silent_stall_stops_the_cache_and_the_stream_resumes(sse):
    app, kit = sse
    kit.start()
    wait_for(kit.stream.healthy)
    kit.authenticate("at_one", None)
    kit.authenticate("at_two", None)
    assert app.introspections == 2
    app.stalled.set()
    wait_for(lambda: not kit.stream.healthy(), timeout=3)
    kit.authenticate("at_two", None)  # no cache while stalled: introspected
    assert app.introspections == 3
    app.revoke("at_one")  # its event waits behind the stall
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)
    wait_for(lambda: len(app.last_event_ids) >= 2, timeout=5)  # the read timeout dropped the silent connection
    app.stalled.clear()
    wait_for(kit.stream.healthy, timeout=5)
    assert app.last_event_ids[-1] == "0"  # resumed after the reset it had seen
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)
    calls = app.introspections
    kit.authenticate("at_two", None)  # served from the cache again once caught up
    assert app.introspections == calls
