"""Requests through the production WSGI application (both stacks), and reading /metrics back."""

from __future__ import annotations

import io
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from prometheus_client.parser import text_string_to_metric_families

from authserver import events
from authserver.observability import metrics

Labels = frozenset[tuple[str, str]]


def call(app: Any, path: str, *, method: str = "GET", body: str = "", headers: dict[str, str] | None = None,
         query: str = "") -> tuple[int, list[tuple[str, str]], bytes]:
    raw = body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(raw),
        "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.url_scheme": "https", "REMOTE_ADDR": "203.0.113.7", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.errors": io.StringIO(),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = response_headers

    # As django.test.Client does: the test's transaction must survive the request's signals.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = app(environ, start_response)
        content = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return captured["status"], captured["headers"], content


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def samples() -> dict[tuple[str, Labels], float]:
    """Every sample of every process, after delivering what is pending (as /metrics would show it)."""
    events.deliver_all()
    body, _ = metrics.render()
    return parse(body.decode())


def parse(text: str) -> dict[tuple[str, Labels], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def delta(before: dict[tuple[str, Labels], float], after: dict[tuple[str, Labels], float], name: str,
          **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)
