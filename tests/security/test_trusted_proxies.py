"""Behind a TLS-terminating proxy every address-based control sees the client, never the proxy,
and never an address the client wrote itself (AUTHSERVER_TRUSTED_PROXIES, authserver.netaddr).

Each consumer is driven through real requests twice: (a) an untrusted peer sends spoofed
``X-Forwarded-For`` / ``Forwarded`` headers and nothing changes: the limit is keyed by the peer and
the audit trail records the peer; (b) through a trusted proxy, the per-client address is what the
consumer uses, so two clients behind one proxy don't share a budget.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from authserver import events, handlers
from authserver.audit.models import AuditEvent
from authserver.audit.services import personal_data
from keys import usage
from keys.exchange import API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import INTROSPECT_URL, REVOKE_URL, TOKEN_URL

pytestmark = pytest.mark.django_db

PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"]
EDGE = "10.0.0.1"  # the TLS-terminating proxy
ALICE = "198.51.100.7"
BOB = "198.51.100.8"
ATTACKER = "203.0.113.66"
SPOOFED = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


@pytest.fixture(autouse=True)
def _trusted_proxies() -> Iterator[None]:
    with override_settings(TRUSTED_PROXIES=PROXIES):
        yield


@pytest.fixture
def limits(settings: Any) -> Any:
    def set_limit(name: str, text: str, mode: str = "local") -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, name: (text, mode)}

    return set_limit


def via_proxy(client_address: str) -> dict[str, str]:
    """What a request relayed by our proxy looks like: the peer is the proxy, the client appended."""
    return {"REMOTE_ADDR": EDGE, "HTTP_X_FORWARDED_FOR": f"{ATTACKER}, {client_address}"}


def spoofed(index: int) -> dict[str, str]:
    """An attacker talking to us directly, claiming a new address each time."""
    return {"REMOTE_ADDR": ATTACKER, "HTTP_X_FORWARDED_FOR": SPOOFED[index % len(SPOOFED)],
            "HTTP_FORWARDED": f"for={SPOOFED[index % len(SPOOFED)]}"}


def refusal_audit(policy: str) -> str:
    """The address the (one) rate-limit refusal of ``policy`` was audited with."""
    event = AuditEvent.objects.get(event="rate_limit.exceeded", subject=f"policy:{policy}")
    assert event.outcome == "failure"
    return str(personal_data(event)["ip"])


def token(http: Any, app: Any, secret: str, meta: dict[str, str]) -> Any:
    return http.post(TOKEN_URL, {"grant_type": "client_credentials"},
                     HTTP_AUTHORIZATION=basic_auth(app.client_id, secret), **meta)


def wrong(secret: str) -> str:
    return "cs_" + secret[3:-1] + ("A" if secret[-1] != "A" else "B")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The telemetry payloads emitted during the test, per topic."""
    seen: dict[str, list[Any]] = {}
    for topic in (events.client_auth_failed, events.introspection_inactive):
        monkeypatch.setattr(topic, "emit", seen.setdefault(topic.name, []).append)
    return seen


# -- token.ip --------------------------------------------------------------------------------------

def test_token_ip_spoofed_forwarding_from_an_untrusted_peer_changes_nothing(client, service_client, limits):
    limits("token.ip", "2/60")
    app, secret = service_client
    assert [token(client, app, secret, spoofed(i)).status_code for i in range(3)] == [200, 200, 429]
    assert refusal_audit("token.ip") == ATTACKER
    issued = AuditEvent.objects.filter(event="token.issued")
    assert {personal_data(e)["ip"] for e in issued} == {ATTACKER}


def test_token_ip_clients_behind_one_proxy_have_their_own_budgets(client, service_client, limits):
    limits("token.ip", "1/60")
    app, secret = service_client
    assert token(client, app, secret, via_proxy(ALICE)).status_code == 200
    assert token(client, app, secret, via_proxy(BOB)).status_code == 200
    assert token(client, app, secret, via_proxy(ALICE)).status_code == 429
    assert refusal_audit("token.ip") == ALICE
    issued = AuditEvent.objects.filter(event="token.issued").order_by("id")
    assert [personal_data(e)["ip"] for e in issued] == [ALICE, BOB]


# -- token.auth_failure.ip and the failed-authentication telemetry -----------------------------------

def test_auth_failure_budget_is_the_peers_when_forwarding_is_spoofed(client, service_client, limits, recorded):
    limits("token.auth_failure.ip", "1/300")
    app, secret = service_client
    assert token(client, app, wrong(secret), spoofed(0)).status_code == 401
    assert token(client, app, secret, spoofed(1)).status_code == 429, "a new claimed address is no new budget"
    # The block itself writes no audit event (already_exceeded counts nothing); the failure's
    # telemetry is the record, and it names the peer.
    assert recorded["client.auth_failed"] == [ATTACKER]
    assert not AuditEvent.objects.filter(event="token.issued").exists()


def test_auth_failure_budget_is_per_client_behind_the_proxy(client, service_client, limits, recorded):
    limits("token.auth_failure.ip", "1/300")
    app, secret = service_client
    assert token(client, app, wrong(secret), via_proxy(ALICE)).status_code == 401
    assert token(client, app, secret, via_proxy(ALICE)).status_code == 429, "Alice is cut off"
    assert token(client, app, secret, via_proxy(BOB)).status_code == 200, "Bob is not"
    assert recorded["client.auth_failed"] == [ALICE]
    assert personal_data(AuditEvent.objects.get(event="token.issued"))["ip"] == BOB


# -- revoke.ip and the token.revoked audit event ---------------------------------------------------

def revoke(http: Any, app: Any, secret: str, meta: dict[str, str], value: str = "x") -> Any:
    return http.post(REVOKE_URL, {"token": value}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret), **meta)


def test_revoke_ip_spoofed_forwarding_changes_nothing(client, service_client, limits):
    limits("revoke.ip", "1/60")
    app, secret = service_client
    assert [revoke(client, app, secret, spoofed(i)).status_code for i in range(2)] == [200, 429]
    assert refusal_audit("revoke.ip") == ATTACKER


def test_revoke_ip_is_per_client_behind_the_proxy(client, service_client, limits):
    limits("revoke.ip", "1/60")
    app, secret = service_client
    access = token(client, app, secret, via_proxy(ALICE)).json()["access_token"]
    assert revoke(client, app, secret, via_proxy(BOB), access).status_code == 200
    assert revoke(client, app, secret, via_proxy(ALICE)).status_code == 200
    assert revoke(client, app, secret, via_proxy(BOB)).status_code == 429
    assert refusal_audit("revoke.ip") == BOB
    assert personal_data(AuditEvent.objects.get(event="token.revoked"))["ip"] == BOB


# -- login.ip and the login audit events -----------------------------------------------------------

def login(http: Any, name: str, meta: dict[str, str]) -> Any:
    return http.post("/accounts/login/", {"username": name, "password": "wrong"}, **meta)


def test_login_ip_spoofed_forwarding_changes_nothing(client, user, limits):
    limits("login.ip", "1/300", "closed")
    assert login(client, "alice", spoofed(0)).status_code == 200
    assert login(client, "bob", spoofed(1)).status_code == 429
    assert refusal_audit("login.ip") == ATTACKER
    assert personal_data(AuditEvent.objects.get(event="login.failure"))["ip"] == ATTACKER


def test_login_ip_is_per_client_behind_the_proxy(client, user, limits):
    limits("login.ip", "1/300", "closed")
    assert login(client, "alice", via_proxy(ALICE)).status_code == 200
    assert login(client, "bob", via_proxy(BOB)).status_code == 200
    assert login(client, "carol", via_proxy(ALICE)).status_code == 429
    assert refusal_audit("login.ip") == ALICE
    failures = AuditEvent.objects.filter(event="login.failure").order_by("id")
    assert [personal_data(e)["ip"] for e in failures] == [ALICE, BOB]


# -- the management API's limit (its refusal is audited with the caller's address) ------------------

@pytest.mark.parametrize(("second", "audited"), [(spoofed(0), ATTACKER), (via_proxy(BOB), BOB)],
                         ids=["spoofed", "via-proxy"])
def test_management_api_limit_audits_the_callers_address(client, limits, second, audited):
    from keys.api import KEYS_READ
    from tests.keys.conftest import KEYS, api_token, get

    limits("api.client", "1/60", "closed")
    _, access = api_token(client, [KEYS_READ])
    assert get(client, KEYS, access, **via_proxy(ALICE)).status_code == 200
    assert get(client, KEYS, access, **second).status_code == 429, "the limit is per API client"
    assert refusal_audit("api.client") == audited


# -- introspection telemetry -----------------------------------------------------------------------

def introspect(http: Any, rs: Any, rs_secret: str, value: str, meta: dict[str, str], **extra: str) -> Any:
    return http.post(INTROSPECT_URL, {"token": value, **extra},
                     HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret), **meta)


def test_introspection_telemetry_spoofed_forwarding_changes_nothing(client, resource_server, recorded):
    rs, rs_secret = resource_server
    assert introspect(client, rs, wrong(rs_secret), "at_x", spoofed(0)).status_code == 401
    assert introspect(client, rs, rs_secret, "at_unknown", spoofed(1)).json() == {"active": False}
    assert recorded["client.auth_failed"] == [ATTACKER]
    assert recorded["introspection.inactive"] == [(rs.client_id, ATTACKER)]


def test_introspection_telemetry_names_the_client_behind_the_proxy(client, resource_server, recorded):
    rs, rs_secret = resource_server
    assert introspect(client, rs, wrong(rs_secret), "at_x", via_proxy(ALICE)).status_code == 401
    assert introspect(client, rs, rs_secret, "at_unknown", via_proxy("2001:db8:1:2::9")).json() == {"active": False}
    # The resource server's own report of its caller still wins over the transport address.
    assert introspect(client, rs, rs_secret, "at_unknown", via_proxy(ALICE), client_ip=BOB).json() == {
        "active": False}
    assert recorded["client.auth_failed"] == [ALICE]
    assert recorded["introspection.inactive"] == [(rs.client_id, "2001:db8:1:2::/64"), (rs.client_id, BOB)]


# -- API-key exchange: the allowlist and the last-used address -------------------------------------

@pytest.fixture
def allowlisted_key() -> tuple[Any, str]:
    owner, _ = make_client(name="customer", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    return api_key_create(client=owner, name="office", allowed_ips=["198.51.100.0/24"])


def exchange(http: Any, key: str, meta: dict[str, str]) -> Any:
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": key, "subject_token_type": API_KEY_TOKEN_TYPE}
    return http.post(TOKEN_URL, data, **meta)


def test_exchange_allowlist_ignores_spoofed_forwarding(client, allowlisted_key):
    key, plaintext = allowlisted_key
    meta = {"REMOTE_ADDR": ATTACKER, "HTTP_X_FORWARDED_FOR": ALICE, "HTTP_FORWARDED": f"for={ALICE}"}
    response = exchange(client, plaintext, meta)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert not AuditEvent.objects.filter(event="token.issued").exists()
    assert str(key.id) not in usage.drain_usage()[1]


def test_exchange_allowlist_and_last_use_see_the_client_behind_the_proxy(client, allowlisted_key):
    key, plaintext = allowlisted_key
    assert exchange(client, plaintext, {"REMOTE_ADDR": EDGE}).status_code == 400, "the proxy is not on the list"
    assert exchange(client, plaintext, via_proxy(ATTACKER)).status_code == 400
    response = exchange(client, plaintext, via_proxy(ALICE))
    assert response.status_code == 200, response.content
    assert usage.drain_usage()[1][str(key.id)][1] == ALICE
    assert personal_data(AuditEvent.objects.get(event="token.issued"))["ip"] == ALICE


def test_exchange_through_a_forwarded_only_proxy(client, allowlisted_key):
    key, plaintext = allowlisted_key
    meta = {"REMOTE_ADDR": EDGE, "HTTP_FORWARDED": f'for={ATTACKER}, for="{ALICE}:4711";proto=https'}
    assert exchange(client, plaintext, meta).status_code == 200
    assert usage.drain_usage()[1][str(key.id)][1] == ALICE


# -- X-Forwarded-Proto ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("proxies", "peer", "kept"),
    [([], ATTACKER, True),  # AUTHSERVER_BEHIND_PROXY alone: as before, believed from anyone
     (PROXIES, EDGE, True), (PROXIES, ATTACKER, False)],
)
def test_forwarded_proto_reaches_django_only_from_a_trusted_proxy(proxies, peer, kept):
    seen: list[dict[str, Any]] = []
    dispatcher = handlers.Dispatcher()
    dispatcher.full = dispatcher.machine = lambda environ, start_response: seen.append(dict(environ)) or []
    environ = {"PATH_INFO": "/oauth/token", "REMOTE_ADDR": peer, "HTTP_X_FORWARDED_PROTO": "https",
               "wsgi.input": io.BytesIO()}
    with override_settings(TRUSTED_PROXIES=proxies):
        dispatcher(environ, lambda *args: None)
    assert ("HTTP_X_FORWARDED_PROTO" in seen[0]) is kept
