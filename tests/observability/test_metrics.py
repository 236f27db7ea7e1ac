"""/metrics: the series after real traffic, and a 404 identical to an unknown path's for anyone else."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError
from django.test import RequestFactory

from authserver import credentials, events, handlers
from tests.conftest import basic_auth
from tests.observability.helpers import call, delta, header, parse, samples

pytestmark = pytest.mark.django_db

TOKEN = "metrics-" + "x" * 32


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("AUTHSERVER_BENCH_BASELINE", raising=False)
    return handlers.Dispatcher()


def _scrape(app) -> dict:
    events.deliver_all()
    status, headers, body = call(app, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    assert header(headers, "Content-Type").startswith("text/plain")
    assert header(headers, "Cache-Control") == "no-store"
    return parse(body.decode())


def test_series_after_traffic(app, settings, resource_server, service_client):
    settings.METRICS_TOKEN = TOKEN
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "introspect.rs": ("3/60", "local")}
    rs, rs_secret = resource_server
    svc, svc_secret = service_client
    before = _scrape(app)

    status, _, body = call(app, "/oauth/token", method="POST", body="grant_type=client_credentials&scope=ai.infer",
                           headers={"Authorization": basic_auth(svc.client_id, svc_secret)})
    assert status == 200, body
    token = json.loads(body)["access_token"]
    rs_auth = {"Authorization": basic_auth(rs.client_id, rs_secret)}
    answers = [call(app, "/oauth/introspect", method="POST", body=f"token={t}", headers=rs_auth)
               for t in (token, credentials.mint("at"), token, token)]
    assert [a[0] for a in answers] == [200, 200, 200, 429]
    assert [json.loads(a[2]).get("active") for a in answers[:3]] == [True, False, True]

    after = _scrape(app)
    route = "oauth2_provider:introspect"
    assert delta(before, after, "authserver_http_requests_total",
                 route="oauth2_provider:token", method="POST", status="200") == 1
    assert delta(before, after, "authserver_http_requests_total", route=route, method="POST", status="200") == 3
    assert delta(before, after, "authserver_http_requests_total", route=route, method="POST", status="429") == 1
    assert delta(before, after, "authserver_http_request_duration_seconds_count", route=route) == 4
    assert delta(before, after, "authserver_tokens_issued_total", grant="client_credentials") == 1
    assert delta(before, after, "authserver_introspections_total", result="active") == 2
    assert delta(before, after, "authserver_introspections_total", result="inactive") == 1
    assert delta(before, after, "authserver_introspections_total", result="rate_limited") == 1
    assert delta(before, after, "authserver_rate_limit_refusals_total", policy="introspect.rs") == 1
    # A route name, never a path or a client id, in any label.
    labels = {value for (_, pairs) in after for _, value in pairs}
    assert not {rs.client_id, svc.client_id, token, "/oauth/introspect"} & labels


def _not_found(app, path: str, method: str = "GET", **headers: str):
    return call(app, path, method=method, headers={"X-Request-ID": "same-id", **headers})


@pytest.mark.parametrize("configured", ["", TOKEN])
@pytest.mark.parametrize("authorization", [
    None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"bearer {TOKEN}", f"Basic {TOKEN}", TOKEN,
    f"Bearer  {TOKEN}", "Bearer ", "Bearer é",
])
def test_without_the_token_metrics_is_an_unknown_path(app, settings, configured, authorization):
    settings.METRICS_TOKEN = configured
    unknown = _not_found(app, "/no-such-path")
    assert unknown[0] == 404
    extra = {} if authorization is None else {"Authorization": authorization}
    assert _not_found(app, "/metrics", **extra) == unknown
    assert _not_found(app, "/metrics", method="POST", **extra) == _not_found(app, "/no-such-path", method="POST")


def test_the_right_token_with_another_method_is_still_a_404(app, settings):
    settings.METRICS_TOKEN = TOKEN
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        assert _not_found(app, "/metrics", method, Authorization=f"Bearer {TOKEN}") == _not_found(
            app, "/no-such-path", method, Authorization=f"Bearer {TOKEN}")


def test_unset_token_refuses_even_an_empty_bearer(app, settings):
    settings.METRICS_TOKEN = ""
    assert _not_found(app, "/metrics", Authorization="Bearer ")[0] == 404


@pytest.mark.parametrize(("error", "dependency"), [
    (DatabaseError("down"), "database"),
    (handlers.RedisConnectionError("down"), "redis"),
    (handlers.CountersUnavailable("down"), "counter_store"),
])
def test_dependency_errors_are_counted_at_the_fail_closed_boundary(error, dependency):
    def view(request):
        raise error

    before = samples()
    response = handlers.FailClosedMiddleware(view)(RequestFactory().post("/oauth/token"))
    assert response.status_code == 503
    assert delta(before, samples(), "authserver_dependency_errors_total", dependency=dependency) == 1


def test_a_revocation_is_counted(app, service_client):
    svc, svc_secret = service_client
    auth = {"Authorization": basic_auth(svc.client_id, svc_secret)}
    status, _, body = call(app, "/oauth/token", method="POST", body="grant_type=client_credentials&scope=ai.infer",
                           headers=auth)
    assert status == 200, body
    before = samples()
    status, _, _ = call(app, "/oauth/revoke", method="POST", body=f"token={json.loads(body)['access_token']}",
                        headers=auth)
    assert status == 200
    after = samples()
    assert delta(before, after, "authserver_revocations_total", kind="access_token") == 1
    assert delta(before, after, "authserver_http_requests_total", route="oauth2_provider:revoke-token",
                 method="POST", status="200") == 1
