"""A fake authorization server implementing the contracts the kit talks to (C2, C6, C7), in process.

Everything goes through an ``httpx.MockTransport``: no sockets. The revocation stream is a
response whose body is a generator fed from a queue, so tests decide when an event, a heartbeat,
a stall or a disconnection happens.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx

ISSUER = "https://as.test"
RS_ID, RS_SECRET = "rs-client", "cs_rs-secret"
CLOSE = object()


class FakeAuthorizationServer:
    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.introspections: list[dict[str, str]] = []
        self.events: list[tuple[int, str, str]] = []  # (id, event, data)
        self.streams: list[queue.Queue[object]] = []
        self.last_event_ids: list[str | None] = []
        self.path_key: dict[str, Any] = {"rotating": False}
        self.path_key_calls = 0
        self.metadata_calls = 0
        self.metadata: dict[str, Any] = {
            "issuer": ISSUER, "introspection_endpoint": f"{ISSUER}/oauth/introspect",
            "revocation_events_endpoint": f"{ISSUER}/oauth/revocations",
            "path_key_endpoint": f"{ISSUER}/oauth/path-key"}
        # RFC 9728: what GET /oauth/resource-metadata answers (issue 16).
        self.resource_metadata: dict[str, Any] = {
            "resource": "https://api.test/mcp", "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"], "scopes_supported": ["ai.infer"], "resource_name": "Test API"}
        self.resource_metadata_status = 200
        self.resource_metadata_calls = 0
        self.introspection_status = 200
        self.stream_status = 200
        self.unreachable = False
        self.heartbeat_after_replay = True
        self.on_introspect: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self.closed = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- what tests do ---------------------------------------------------------------------------
    def revoke(self, kind: str, **fields: str) -> int:
        return self.emit("revocation", json.dumps({"kind": kind, **fields, "at": 0.0}))

    def emit(self, event: str, data: str) -> int:
        with self._lock:
            event_id = len(self.events) + 1
            self.events.append((event_id, event, data))
            for stream in self.streams:
                stream.put(_event(event_id, event, data))
        return event_id

    def heartbeat(self) -> None:
        with self._lock:
            for stream in self.streams:
                stream.put(b": hb\n\n")

    def drop_streams(self) -> None:
        with self._lock:
            streams, self.streams = self.streams, []
        for stream in streams:
            stream.put(CLOSE)

    # -- the endpoints ---------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/d/"):
            self.metadata_calls += 1
            return httpx.Response(200, json=self.metadata)
        if request.headers.get("authorization") != "Basic " + base64.b64encode(
                f"{RS_ID}:{RS_SECRET}".encode()).decode():
            return httpx.Response(401, json={"error": "invalid_client"})
        if path.endswith("/introspect") and request.method == "POST":
            return self._introspect(request)
        if path.endswith("/path-key") and request.method == "POST":
            self.path_key_calls += 1
            return httpx.Response(200, json=self.path_key, headers={"Cache-Control": "no-store"})
        if path.endswith("/resource-metadata") and request.method == "GET":
            self.resource_metadata_calls += 1
            if self.unreachable:
                raise httpx.ConnectError("unreachable", request=request)
            if self.resource_metadata_status != 200:
                return httpx.Response(self.resource_metadata_status, text="oops")
            return httpx.Response(200, json=self.resource_metadata, headers={"Cache-Control": "no-store"})
        if path.endswith("/revocations") and request.method == "GET":
            return self._revocations(request)
        return httpx.Response(404)

    def _introspect(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            raise httpx.ConnectError("unreachable", request=request)
        form = dict(parse_qsl(request.content.decode()))
        self.introspections.append(form)
        if self.introspection_status != 200:
            return httpx.Response(self.introspection_status, text="oops")
        answer = dict(self.answers.get(form["token"], {"active": False}))
        if self.on_introspect is not None:
            self.on_introspect(form["token"])
        return httpx.Response(200, json=answer)

    def _revocations(self, request: httpx.Request) -> httpx.Response:
        if self.stream_status != 200:
            return httpx.Response(self.stream_status, headers={"Retry-After": "0"})
        last = request.headers.get("last-event-id")
        self.last_event_ids.append(last)
        stream: queue.Queue[object] = queue.Queue()
        with self._lock:
            stream.put(b"retry: 1000\n\n")
            if last is not None and last.isdigit() and int(last) <= len(self.events):
                for event_id, event, data in self.events[int(last):]:
                    stream.put(_event(event_id, event, data))
            else:
                stream.put(_event(len(self.events), "reset", "{}"))
            if self.heartbeat_after_replay:
                stream.put(b": hb\n\n")
            self.streams.append(stream)
        return httpx.Response(200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
                              content=_body(stream, self))


def _event(event_id: int, event: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


def _body(stream: queue.Queue[object], server: FakeAuthorizationServer) -> Iterator[bytes]:
    while not server.closed:
        try:
            item = stream.get(timeout=0.02)
        except queue.Empty:
            continue
        if item is CLOSE:
            return
        assert isinstance(item, bytes)
        yield item
