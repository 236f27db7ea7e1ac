"""Every abusable endpoint is limited: 429 with Retry-After and RateLimit fields, no work done."""

from __future__ import annotations

import re

import pytest

from authserver import counters
from authserver.audit.models import AuditEvent
from authserver.oauth.models import AccessToken
from tests.conftest import basic_auth
from tests.factories import PASSWORD
from tests.helpers import client_credentials, introspect

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    def set_limit(name: str, text: str, mode: str = "local") -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, name: (text, mode)}

    return set_limit


def _assert_limited(response, policy: str, limit: int) -> None:
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert f'"{policy}";q={limit};w=' in response["RateLimit-Policy"]
    assert re.fullmatch(rf'"{re.escape(policy)}";r=0;t=\d+', response["RateLimit"])


def test_token_endpoint_per_network(client, service_client, limits):
    limits("token.ip", "3/60")
    app, secret = service_client
    ok = [client_credentials(client, app, secret) for _ in range(3)]
    assert all(r.status_code == 200 for r in ok)
    assert ok[0]["RateLimit"].startswith('"')
    refused = [client_credentials(client, app, secret) for _ in range(3)]
    for response in refused:
        _assert_limited(response, "token.ip", 3)
    assert AccessToken.objects.count() == 3, "a limited request issues nothing"
    assert AuditEvent.objects.filter(event="rate_limit.exceeded").count() == 1, "one event per window, not per request"


def test_failed_client_authentication_has_its_own_budget(client, service_client, limits):
    limits("token.auth_failure.ip", "2/300")
    app, secret = service_client
    wrong = "cs_" + secret[3:-1] + ("A" if secret[-1] != "A" else "B")
    assert [client_credentials(client, app, wrong).status_code for _ in range(2)] == [401, 401]
    blocked = client_credentials(client, app, secret)  # even the right secret: this network is cut off
    _assert_limited(blocked, "token.auth_failure.ip", 2)
    assert not AccessToken.objects.exists()


def test_per_client_limit_applies_after_authentication(client, service_client, limits):
    limits("token.client", "2/60")
    app, secret = service_client
    assert [client_credentials(client, app, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert AccessToken.objects.count() == 2


def test_introspection_per_resource_server(client, service_client, resource_server, limits):
    limits("introspect.rs", "2/60")
    app, secret = service_client
    rs, rs_secret = resource_server
    token = client_credentials(client, app, secret).json()["access_token"]
    responses = [introspect(client, rs, rs_secret, token) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    _assert_limited(responses[2], "introspect.rs", 2)


def test_revocation_per_network(client, service_client, limits):
    limits("revoke.ip", "1/60")
    app, secret = service_client
    auth = basic_auth(app.client_id, secret)
    assert client.post("/oauth/revoke", {"token": "x"}, HTTP_AUTHORIZATION=auth).status_code == 200
    _assert_limited(client.post("/oauth/revoke", {"token": "x"}, HTTP_AUTHORIZATION=auth), "revoke.ip", 1)


@pytest.mark.parametrize(("policy", "vary_user"), [("login.account", False), ("login.ip", True)])
def test_login_is_limited_before_checking_the_password(client, user, limits, policy, vary_user):
    limits(policy, "2/300", "closed")
    for i in range(2):
        name = f"someone{i}" if vary_user else "alice"
        assert client.post("/accounts/login/", {"username": name, "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    _assert_limited(response, policy, 2)
    assert "_auth_user_id" not in client.session, "the right password after the limit does not log in"


def test_login_fails_closed_when_the_limiter_store_is_down(client, user, monkeypatch):
    def down(*args, **kwargs):
        raise counters.CountersUnavailable("store down")

    monkeypatch.setattr(counters.backend(), "consume", down)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_token_endpoint_falls_back_to_per_process_limits_when_the_store_is_down(client, service_client, limits,
                                                                               monkeypatch):
    limits("token.ip", "2/60")

    def down(*args, **kwargs):
        raise counters.CountersUnavailable("store down")

    monkeypatch.setattr(counters.backend(), "consume", down)
    monkeypatch.setattr(counters.backend(), "windows", down)  # the checks before any work (token.ip)
    app, secret = service_client
    assert [client_credentials(client, app, secret).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize(
    ("address", "unit"),
    [("192.0.2.7", "192.0.2.7"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
     ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"), ("::ffff:192.0.2.7", "192.0.2.7"), ("garbage", "unknown"),
     (None, "unknown")],
)
def test_ipv6_is_grouped_by_prefix(address, unit):
    from authserver.netaddr import client_network

    assert client_network(address) == unit
