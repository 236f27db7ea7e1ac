"""Issue 12, items 12 and 13: budgets of failed client authentication that can't lock others out,
at every machine endpoint that authenticates clients (token, introspection, revocation).

Every client here comes from the same address (the test client's 127.0.0.1).
"""

from __future__ import annotations

import pytest

from authserver import counters, revocation
from authserver.audit.models import AuditEvent
from authserver.ratelimit import limiter
from tests.conftest import basic_auth
from tests.factories import make_client, make_resource_server
from tests.helpers import client_credentials, introspect

pytestmark = pytest.mark.django_db
BUDGET = 20  # the default token.auth_failure.ip: 20 per 5 minutes


def _wrong(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")  # well formed, not the secret


def _token(client, client_id: str, secret: str):
    return client.post("/oauth/token", {"grant_type": "client_credentials"},
                       HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def _revoke(client, client_id: str, secret: str):
    return client.post("/oauth/revoke", {"token": "at_unknown"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def _introspect(client, client_id: str, secret: str):
    return client.post("/oauth/introspect", {"token": "at_unknown"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def _assert_refused(response) -> None:
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert '"token.auth_failure.ip";q=20;w=300' in response["RateLimit-Policy"]


# -- Item 12: one client's failures never refuse another's correct credentials ------------------------
def test_one_clients_failures_do_not_lock_out_another_on_the_same_address(client, service_client):
    guessed, guessed_secret = make_client(name="guessed")
    neighbour, neighbour_secret = service_client
    statuses = [client_credentials(client, guessed, _wrong(guessed_secret)).status_code for _ in range(BUDGET + 5)]
    assert statuses == [401] * BUDGET + [429] * 5
    _assert_refused(client_credentials(client, guessed, guessed_secret))  # its own budget: even the right secret
    assert client_credentials(client, neighbour, neighbour_secret).status_code == 200
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:token.auth_failure.ip").exists()


def test_unknown_ids_spend_the_networks_budget_not_a_known_clients(client, service_client):
    known, secret = service_client
    other, other_secret = make_client(name="other")
    assert [_token(client, f"nobody-{i}", _wrong(secret)).status_code for i in range(BUDGET)] == [401] * BUDGET
    _assert_refused(_token(client, "nobody-else", _wrong(secret)))
    assert client_credentials(client, known, secret).status_code == 200
    # A wrong secret for a real id now answers exactly as an unknown id does.
    _assert_refused(client_credentials(client, other, _wrong(other_secret)))
    assert client_credentials(client, other, other_secret).status_code == 200


def _statuses(client, ids: list[str], secret: str) -> list[int]:
    return [_token(client, client_id, secret).status_code for client_id in ids]


def test_the_answers_do_not_reveal_which_ids_exist(client, service_client):
    known, secret = service_client
    wrong = _wrong(secret)
    seen = {}
    for probe in (known.client_id, "no-such-client"):
        limiter.reset_for_tests()
        counters.wipe_for_tests()
        # Failures from other ids first, then the probed id: the answers must not depend on
        # whether the probed id exists.
        seen[probe] = _statuses(client, ["decoy"] * 7 + [probe] * 20, wrong)
    assert seen[known.client_id] == seen["no-such-client"]
    assert seen["no-such-client"] == [401] * BUDGET + [429] * 7


# -- Item 13: the same budgets at introspection and revocation ----------------------------------------
def test_introspection_spends_the_budget(client, resource_server):
    rs, rs_secret = resource_server
    other_rs, other_secret = make_resource_server(audience="https://other.example.com")
    statuses = [_introspect(client, rs.client_id, _wrong(rs_secret)).status_code for _ in range(50)]
    assert statuses == [401] * BUDGET + [429] * (50 - BUDGET)
    _assert_refused(_introspect(client, rs.client_id, _wrong(rs_secret)))
    _assert_refused(_introspect(client, rs.client_id, rs_secret))  # its own budget: even the right secret
    assert _introspect(client, other_rs.client_id, other_secret).status_code == 200
    assert _introspect(client, "nobody", _wrong(rs_secret)).status_code == 429, "the network's budget is spent"
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:token.auth_failure.ip").exists()


def test_a_cached_resource_server_is_not_slowed_by_the_budget(client, service_client, resource_server):
    app, secret = service_client
    rs, rs_secret = resource_server
    token = client_credentials(client, app, secret).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).json()["active"] is True  # now cached
    for i in range(BUDGET + 1):
        _introspect(client, f"nobody-{i}", _wrong(rs_secret))
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    revocation.clear_caches()
    assert introspect(client, rs, rs_secret, token).json()["active"] is True, "verified again: not its budget"


def test_revocation_spends_the_budget(client, service_client):
    app, secret = service_client
    other, other_secret = make_client(name="other")
    statuses = [_revoke(client, app.client_id, _wrong(secret)).status_code for _ in range(50)]
    assert statuses == [401] * BUDGET + [429] * (50 - BUDGET)
    _assert_refused(_revoke(client, app.client_id, secret))
    assert _revoke(client, other.client_id, other_secret).status_code == 200


def test_the_endpoints_share_one_budget(client, service_client, resource_server):
    app, secret = service_client
    rs, rs_secret = resource_server
    for _ in range(BUDGET // 2):
        assert _token(client, app.client_id, _wrong(secret)).status_code == 401
        assert _revoke(client, "nobody", _wrong(secret)).status_code == 401
    _assert_refused(_introspect(client, "nobody", _wrong(rs_secret)))  # the 21st failure on this network
