from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tests.factories import RS_AUDIENCE, make_client


@pytest.fixture
def anomaly_settings(settings: Any) -> Any:
    settings.ANOMALY_LIMIT_CACHE_SECONDS = 0
    settings.ANOMALY_ALERT_EMAILS = ["ops@example.test"]
    return settings


@pytest.fixture
def webhook_sink(settings: Any) -> Iterator[dict[str, Any]]:
    """A local HTTP endpoint that records what it receives (Standard Webhooks, delivered on demand)."""
    from tests.webhooks.receiver import deliver_due

    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True

    def received_data() -> list[Any]:
        deliver_due()
        return [json.loads(body)["data"] for _, body in received]

    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "received": received,
               "json": received_data}
    finally:
        server.shutdown()


@pytest.fixture
def owner(db: Any, webhook_sink: dict[str, Any]) -> Any:
    client, _ = make_client(name="customer", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    from clients.webhooks.services import client_contact_set

    _, webhook_sink["secret"] = client_contact_set(client=client, webhook_url=webhook_sink["url"],
                                                   contact_email="owner@example.test", actor="test")
    return client
