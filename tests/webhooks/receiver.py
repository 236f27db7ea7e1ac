"""A real local HTTP endpoint that takes webhooks (scripted answers), and a synchronous delivery run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clients.webhooks.delivery import deliveries_due, delivery_attempt
from clients.webhooks.models import WebhookDelivery


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, location = server.answers.pop(0) if server.answers else (204, None)
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def receiver() -> Iterator[Any]:
    """``.url``, ``.received`` (path, headers, body), ``.answers``: [(status, location)] answered in turn."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received, server.answers = [], []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/authserver"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def deliver_due() -> list[WebhookDelivery]:
    """What the worker does with every due delivery, here and now."""
    return [d for pk in deliveries_due() if (d := delivery_attempt(delivery_id=pk)) is not None]
