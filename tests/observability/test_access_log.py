"""One JSON access line per request (both stacks), the request id in and out, no credential."""

from __future__ import annotations

import json
import logging

import pytest

from authserver import events, handlers
from authserver.logging import JsonFormatter
from tests.conftest import basic_auth
from tests.observability.helpers import call, header

pytestmark = pytest.mark.django_db

FIELDS = {"method", "route", "status", "duration_ms", "client_id", "resource_server", "client_ip", "request_id"}


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("AUTHSERVER_BENCH_BASELINE", raising=False)
    return handlers.Dispatcher()


@pytest.fixture
def lines(caplog):
    """The access lines as the JSON formatter writes them, after delivering what is pending."""
    caplog.set_level(logging.INFO)
    events.deliver_all()
    caplog.clear()

    def read() -> list[dict]:
        events.deliver_all()
        formatter = JsonFormatter()
        return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "authserver.access"]

    return read


def test_a_token_and_its_introspection_leave_one_line_each_without_a_credential(app, lines, caplog,
                                                                               resource_server, service_client):
    rs, rs_secret = resource_server
    svc, svc_secret = service_client
    status, headers, body = call(app, "/oauth/token", method="POST",
                                 body="grant_type=client_credentials&scope=ai.infer",
                                 headers={"Authorization": basic_auth(svc.client_id, svc_secret),
                                          "X-Request-ID": "issue-1"})
    assert status == 200 and header(headers, "X-Request-ID") == "issue-1"
    token = json.loads(body)["access_token"]
    status, headers, body = call(app, "/oauth/introspect", method="POST", body=f"token={token}",
                                 headers={"Authorization": basic_auth(rs.client_id, rs_secret),
                                          "X-Request-ID": "9b2c6f0e-77aa-4c1d-8a52-0d1c3f0a7b11"})
    assert status == 200 and json.loads(body)["active"] is True
    assert header(headers, "X-Request-ID") == "9b2c6f0e-77aa-4c1d-8a52-0d1c3f0a7b11"

    access = lines()
    assert [line["request_id"] for line in access] == ["issue-1", "9b2c6f0e-77aa-4c1d-8a52-0d1c3f0a7b11"]
    issued, introspected = access
    assert FIELDS <= set(issued) and FIELDS <= set(introspected)
    assert issued["route"] == "oauth2_provider:token" and issued["status"] == 200 and issued["method"] == "POST"
    assert introspected == {**introspected, "route": "oauth2_provider:introspect", "status": 200,
                            "client_id": svc.client_id, "resource_server": rs.client_id, "client_ip": "203.0.113.7"}
    assert isinstance(introspected["duration_ms"], float) and introspected["duration_ms"] >= 0
    everything = "\n".join(json.dumps(line) for line in access) + caplog.text
    for secret in (token, rs_secret, svc_secret, basic_auth(rs.client_id, rs_secret).split()[1]):
        assert secret not in everything
    assert "token=" not in everything and "/oauth/" not in json.dumps(access)


def test_the_browser_stack_gets_the_line_and_the_id_too(app, lines):
    status, headers, _ = call(app, "/healthz", query="access_token=at_secretlooking&x=1",
                              headers={"X-Request-ID": "browser.req:42"})
    assert status == 200 and header(headers, "X-Request-ID") == "browser.req:42"
    (line,) = lines()
    assert line["route"] == "healthz" and line["request_id"] == "browser.req:42" and line["method"] == "GET"
    assert "secretlooking" not in json.dumps(line) and "x=1" not in json.dumps(line)


def test_an_unknown_path_is_logged_without_its_path(app, lines):
    status, headers, _ = call(app, "/at_0123456789/leaked")
    assert status == 404
    (line,) = lines()
    assert line["route"] == "unmatched" and line["status"] == 404 and "leaked" not in json.dumps(line)
    assert line["request_id"] == header(headers, "X-Request-ID")


@pytest.mark.parametrize("supplied", [
    "", "a" * 129, "has space", "semi;colon", "quote\"d", "<script>", "é", "new\nline", "tab\tid", "comma,id",
])
def test_an_unsafe_request_id_is_replaced(app, lines, supplied):
    _, headers, _ = call(app, "/healthz", headers={"X-Request-ID": supplied})
    echoed = header(headers, "X-Request-ID")
    assert echoed != supplied and len(echoed) == 32 and int(echoed, 16) >= 0
    (line,) = lines()
    assert line["request_id"] == echoed


def test_without_a_request_id_each_request_gets_its_own(app, lines):
    ids = {header(call(app, "/healthz")[1], "X-Request-ID") for _ in range(3)}
    assert len(ids) == 3
    assert {line["request_id"] for line in lines()} == ids


def test_the_longest_accepted_request_id(app):
    assert header(call(app, "/healthz", headers={"X-Request-ID": "a" * 128})[1], "X-Request-ID") == "a" * 128
