"""GET /oauth/revocations (C7): authentication, framing, heartbeat, resume, reset, lifetime, bound."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import OperationalError, close_old_connections
from django.test import Client as HttpClient

from authserver.audit.models import AuditEvent
from authserver.revocation import feed
from authserver.revocation.models import RevocationEvent
from authserver.revocation_stream import endpoint
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db
URL = "/oauth/revocations"
DIGEST = "ab" * 32


_opened: list[Any] = []


@pytest.fixture(autouse=True)
def _short_streams(settings: Any) -> Iterator[None]:
    settings.REVOCATIONS_MAX_SECONDS = 0.5
    settings.REVOCATIONS_HEARTBEAT_SECONDS = 0.15
    yield
    while _opened:  # as the web server does when the consumer goes away: every slot comes back
        _close(_opened.pop())
    assert endpoint.open_streams() == 0


def _close(response: Any) -> None:
    """What the web server does when the consumer goes away; without closing the test's database
    connection (as the test client does for its own requests)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def _open(resource_server: Any, **headers: str) -> Any:
    rs, secret = resource_server
    response = HttpClient().get(URL, HTTP_AUTHORIZATION=basic_auth(rs.client_id, secret), **headers)
    _opened.append(response)
    return response


def _body(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def _events(body: str) -> list[dict[str, Any]]:
    """The dispatched events (comments and the retry field dropped), each with its fields."""
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith((":", "retry")))
        if fields:
            out.append(fields)
    return out


def _record(*events: feed.Revoked) -> list[int]:
    for event in events:  # one call each: a call records each distinct event once
        feed.record([event])
    return list(RevocationEvent.objects.order_by("-id").values_list("id", flat=True)[:len(events)])[::-1]


def test_a_fresh_consumer_gets_retry_then_reset_at_the_latest_id(resource_server):
    (latest,) = _record(feed.FLUSH)
    response = _open(resource_server)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-store" and response["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in response
    body = _body(response)
    # The first heartbeat at once: the consumer has caught up.
    assert body.startswith(f"retry: 1000\n\nid: {latest}\nevent: reset\ndata: {{}}\n\n: hb\n\n")
    assert _events(body) == [{"id": str(latest), "event": "reset", "data": "{}"}]  # the event before it: not replayed


def test_resume_replays_every_later_event_in_order_with_only_its_members(resource_server):
    first, *later = _record(feed.FLUSH, feed.Revoked("access_token", DIGEST), feed.client("svc-1"),
                            feed.Revoked("api_key", "cd" * 32))
    body = _body(_open(resource_server, HTTP_LAST_EVENT_ID=str(first)))
    events = _events(body)
    assert [e["id"] for e in events] == [str(i) for i in later]
    assert all(e["event"] == "revocation" for e in events)
    data = [json.loads(e["data"]) for e in events]
    assert [{k: v for k, v in d.items() if k != "at"} for d in data] == [
        {"kind": "access_token", "digest": DIGEST}, {"kind": "client", "client_id": "svc-1"},
        {"kind": "api_key", "digest": "cd" * 32}]
    assert all(isinstance(d["at"], float) and abs(d["at"] - time.time()) < 60 for d in data)
    assert body.index(": hb") > body.index(f"id: {later[-1]}\n")  # caught up: after the replay
    assert re.search(rf"id: {later[0]}\nevent: revocation\ndata: \{{\"kind\":\"access_token\",\"digest\":\"{DIGEST}\","
                     r"\"at\":[0-9.]+\}\n\n", body)


def test_resume_at_the_newest_event_sends_nothing_but_heartbeats(resource_server):
    (latest,) = _record(feed.FLUSH)
    body = _body(_open(resource_server, HTTP_LAST_EVENT_ID=str(latest)))
    assert _events(body) == []
    assert body.count(": hb\n\n") >= 2  # 0.5 s of stream, a heartbeat every 0.15 s


@pytest.mark.parametrize("last_event_id", ["abc", "-1", "1e3", " 5", "", "٣", "9" * 30, "past-newest", "pruned"])
def test_an_unusable_last_event_id_resets(resource_server, last_event_id):
    ids = _record(feed.FLUSH, feed.FLUSH, feed.FLUSH)
    RevocationEvent.objects.filter(id=ids[0]).delete()  # pruned: the consumer's id is older than what is left
    value = {"past-newest": str(ids[-1] + 1), "pruned": str(ids[0] - 1)}.get(last_event_id, last_event_id)
    events = _events(_body(_open(resource_server, HTTP_LAST_EVENT_ID=value)))
    assert events[0] == {"id": str(ids[-1]), "event": "reset", "data": "{}"}
    assert len(events) == 1


def test_an_empty_table_resets_at_zero(resource_server):
    assert _events(_body(_open(resource_server))) == [{"id": "0", "event": "reset", "data": "{}"}]


def test_an_event_committed_while_streaming_arrives_within_half_a_second(resource_server):
    (latest,) = _record(feed.FLUSH)
    chunks = iter(_open(resource_server, HTTP_LAST_EVENT_ID=str(latest)).streaming_content)
    assert next(chunks).startswith(b"retry: 1000")
    (new,) = _record(feed.Revoked("refresh_token", DIGEST))
    recorded = time.monotonic()
    for chunk in chunks:
        if chunk.startswith(f"id: {new}\n".encode()):
            break
    assert time.monotonic() - recorded < 0.5


def test_the_stream_ends_after_its_lifetime(resource_server, settings):
    settings.REVOCATIONS_MAX_SECONDS = 0.3
    started = time.monotonic()
    _body(_open(resource_server))
    assert 0.3 <= time.monotonic() - started < 1.0
    assert endpoint.open_streams() == 0


def test_only_get(resource_server):
    rs, secret = resource_server
    response = HttpClient().post(URL, HTTP_AUTHORIZATION=basic_auth(rs.client_id, secret))
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("case", ["none", "wrong-secret", "unknown-client", "not-a-resource-server", "bearer",
                                  "malformed-basic"])
def test_authentication_failures(resource_server, service_client, case):
    rs, secret = resource_server
    app, app_secret = service_client
    authorization = {
        "none": None,
        "wrong-secret": basic_auth(rs.client_id, app_secret),
        "unknown-client": basic_auth("no-such-client", secret),
        "not-a-resource-server": basic_auth(app.client_id, app_secret),
        "bearer": f"Bearer {secret}",
        "malformed-basic": "Basic !!!",
    }[case]
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = HttpClient().get(URL, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="revocations"'
    assert response.json()["error"] == "invalid_client" and response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.filter(event="revocations.refused").get()
    assert event.outcome == "failure" and event.subject == "endpoint:revocations"
    assert secret not in json.dumps(event.details) and app_secret not in event.actor
    assert endpoint.open_streams() == 0


def test_failures_spend_the_shared_budget(resource_server, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.auth_failure.ip": ("2/300", "local")}
    rs, _ = resource_server
    statuses = [HttpClient().get(URL, HTTP_AUTHORIZATION=basic_auth(rs.client_id, "x" * 10)).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:token.auth_failure.ip").exists()


def test_connections_are_rate_limited_per_resource_server(resource_server, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "revocations.rs": ("1/60", "local")}
    assert _open(resource_server).status_code == 200
    refused = _open(resource_server)
    assert refused.status_code == 429 and "Retry-After" in refused


def test_streams_per_process_are_bounded(resource_server, settings):
    settings.REVOCATIONS_MAX_STREAMS = 1
    held = _open(resource_server)
    assert held.status_code == 200 and endpoint.open_streams() == 1
    busy = _open(resource_server)
    assert busy.status_code == 503 and busy["Retry-After"] == endpoint.BUSY_RETRY_AFTER
    assert busy.json()["error"] == "temporarily_unavailable"
    _close(held)  # the consumer went away before reading: its slot comes back
    assert endpoint.open_streams() == 0
    assert _open(resource_server).status_code == 200


def test_database_down_at_connect_is_503(resource_server, monkeypatch):
    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(RevocationEvent.objects, "aggregate", down)
    response = _open(resource_server)
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert endpoint.open_streams() == 0


def test_database_lost_mid_stream_ends_it(resource_server, monkeypatch):
    response = _open(resource_server)
    chunks: Iterator[bytes] = iter(response.streaming_content)
    next(chunks)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(RevocationEvent.objects, "filter", down)
    assert list(chunks) == []
    assert endpoint.open_streams() == 0


@pytest.mark.parametrize(("raw", "first", "last", "expected"), [
    ("5", 1, 9, 5), ("1", 1, 9, 1), ("9", 1, 9, 9), ("0", 1, 9, None), ("10", 1, 9, None), (None, 1, 9, None),
    ("5", None, None, None), ("+5", 1, 9, None), ("5 ", 1, 9, None),
])
def test_resume_point(raw, first, last, expected):
    assert endpoint.resume_point(raw, first, last) == expected
