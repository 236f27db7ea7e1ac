"""The JSON access line and the traffic series, from the telemetry events (off the request path).

authserver.handlers emits one ``events.request_served`` per request (both stacks); about once a
second the events thread hands the batch here. Each request becomes one line on the
``authserver.access`` logger (through the normal logging pipeline, so the credential redaction
applies) and counts in the request, token and introspection series. Access lines therefore appear
up to about a second after the response, and at the latest when the process exits.

What a line holds: method, route name, status, duration, client id and resource server when the
view recorded them, the client's address, the request id, the answering process's pid. Never a
path, a query string, a body or a header value other than the validated request id.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Hashable
from typing import Any, cast

from authserver import events
from authserver.netaddr import client_address, normalise_ip
from authserver.observability import metrics

log = logging.getLogger("authserver.access")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# RFC 6749 §4.4, §6, §4.1.3; RFC 8693 (the API-key exchange).
GRANTS = frozenset({"client_credentials", "refresh_token", "authorization_code",
                    "urn:ietf:params:oauth:grant-type:token-exchange"})
INTROSPECTION_RESULTS = frozenset({"active", "inactive", "rate_limited"})
TOKEN_ROUTE = "oauth2_provider:token"  # noqa: S105 - a route name
INTROSPECT_ROUTE = "oauth2_provider:introspect"
UNMATCHED = "unmatched"  # no route: an unknown path, or a static file

Peer = tuple[str | None, str | None, str | None]  # REMOTE_ADDR, X-Forwarded-For, Forwarded
Served = tuple[str, str | None, int, float, tuple[str | None, str | None, str | None] | None, Peer, str]


def _request_served(batch: Counter[Hashable]) -> None:
    pid = os.getpid()  # the events thread runs in the process that answered
    for payload, n in batch.items():
        method, route, status, seconds, telemetry, peer, request_id = cast(Served, payload)
        client_id, resource_server, outcome = telemetry or (None, None, None)
        remote, forwarded_for, forwarded = peer
        headers = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded_for, "HTTP_FORWARDED": forwarded}
        ip = normalise_ip(client_address({k: v for k, v in headers.items() if v is not None}))
        for _ in range(n):
            log.info("request", extra={
                "method": method[:16], "route": route or UNMATCHED, "status": status,
                "duration_ms": round(seconds * 1000, 3), "client_id": client_id, "resource_server": resource_server,
                "client_ip": str(ip) if ip else None, "request_id": request_id, "pid": pid,
            })
            metrics.request_seconds.labels(route or UNMATCHED).observe(seconds)
        metrics.requests.labels(route or UNMATCHED, method if method in METHODS else "other", str(status)).inc(n)
        if route == TOKEN_ROUTE and status == 200:
            metrics.tokens_issued.labels(outcome if outcome in GRANTS else "other").inc(n)
        elif route == INTROSPECT_ROUTE:
            metrics.introspections.labels(_introspection_result(status, outcome)).inc(n)


def _introspection_result(status: int, outcome: str | None) -> str:
    if status == 429:
        return "rate_limited"  # the resource server over its own limit (introspect.rs)
    if status == 200 and outcome in INTROSPECTION_RESULTS:
        return outcome
    return "error"


def _count(series: Any) -> Any:
    def subscriber(batch: Counter[Hashable]) -> None:
        for label, n in batch.items():
            series.labels(str(label)).inc(n)

    return subscriber


SUBSCRIPTIONS: tuple[tuple[events.Topic, Any], ...] = (
    (events.request_served, _request_served),
    (events.dependency_failed, _count(metrics.dependency_errors)),
    (events.rate_limit_refused, _count(metrics.rate_limit_refusals)),
)


def connect() -> None:
    for topic, subscriber in SUBSCRIPTIONS:
        topic.subscribe(subscriber)
