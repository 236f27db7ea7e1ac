"""Query budgets of the hot paths (the bench measures their speed; these pin their shape).

Introspection: no query on a cache hit, exactly one on a miss (the token or key row; the resource
server's authentication is cached too), none for anything malformed. The token endpoint does not
re-read the token it has just written.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authserver import credentials, revocation
from authserver.revocation.store import REDIS_KEY
from clients.services import client_secret_rotate
from keys.services import api_key_create
from tests.helpers import client_credentials, introspect

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_resource_servers():
    revocation.resource_servers.clear()
    yield
    revocation.resource_servers.clear()


@pytest.fixture
def tokens(client, service_client):
    app, secret = service_client

    def issue() -> str:
        response = client_credentials(client, app, secret, scope="ai.infer")
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue


def _introspect(client, resource_server, token):
    rs, rs_secret = resource_server
    response = introspect(client, rs, rs_secret, token)
    assert response.status_code == 200, response.content
    return response.json()


def _warm(client, resource_server):
    """Authenticate the resource server once (cached from then on)."""
    _introspect(client, resource_server, credentials.mint("at"))


def test_miss_costs_one_query_and_hit_none(client, resource_server, tokens):
    token = tokens()
    _warm(client, resource_server)
    with CaptureQueriesContext(connection) as miss:
        assert _introspect(client, resource_server, token)["active"] is True
    with CaptureQueriesContext(connection) as hit:
        assert _introspect(client, resource_server, token)["active"] is True
    assert len(miss) == 1, miss.captured_queries
    assert len(hit) == 0, hit.captured_queries
    assert "token_checksum" in miss.captured_queries[0]["sql"]


def test_first_call_authenticates_the_resource_server_with_one_more_query(client, resource_server, tokens):
    token = tokens()
    with CaptureQueriesContext(connection) as first:
        assert _introspect(client, resource_server, token)["active"] is True
    assert len(first) == 2, first.captured_queries


@pytest.mark.parametrize("garbage", ["", "at_", "at_short", "at_" + "a" * 49, "x" * 100_000, "rt_" + "a" * 49,
                                     "ak_" + "a" * 49, "ak_short"],
                         ids=["empty", "prefix", "short", "bad-checksum", "100k", "refresh-shape", "key-bad-checksum",
                              "key-short"])
def test_malformed_tokens_and_keys_cost_zero_queries(client, resource_server, garbage):
    _warm(client, resource_server)
    with CaptureQueriesContext(connection) as queries:
        response = introspect(client, *resource_server, garbage)
    assert response.status_code in (200, 400, 413)  # 413: over DATA_UPLOAD_MAX_MEMORY_SIZE
    if response.status_code == 200:
        assert response.json() == {"active": False}
    assert len(queries) == 0, queries.captured_queries


def test_api_key_miss_one_query_hit_none(client, resource_server, service_client):
    app, _ = service_client
    _, key = api_key_create(client=app, name="bench", audiences=[resource_server[0].audience])
    _warm(client, resource_server)
    with CaptureQueriesContext(connection) as miss:
        assert _introspect(client, resource_server, key)["active"] is True
    with CaptureQueriesContext(connection) as hit:
        assert _introspect(client, resource_server, key)["active"] is True
    assert len(miss) == 1 and len(hit) == 0, (miss.captured_queries, hit.captured_queries)


def test_unknown_credentials_cost_one_query_then_none(client, resource_server):
    _warm(client, resource_server)
    for forged in (credentials.mint("at"), credentials.mint(credentials.api_key_prefix())):
        with CaptureQueriesContext(connection) as first:
            assert _introspect(client, resource_server, forged) == {"active": False}
        with CaptureQueriesContext(connection) as again:
            assert _introspect(client, resource_server, forged) == {"active": False}
        assert (len(first), len(again)) == (1, 0), (first.captured_queries, again.captured_queries)


def test_expired_token_is_remembered_as_inactive(client, resource_server, tokens):
    from authserver.oauth.models import AccessToken

    token = tokens()
    AccessToken.objects.filter(token_checksum=credentials.digest(token)).update(
        expires=timezone.now() - timedelta(seconds=1))
    _warm(client, resource_server)
    with CaptureQueriesContext(connection) as first:
        assert _introspect(client, resource_server, token) == {"active": False}
    with CaptureQueriesContext(connection) as again:
        assert _introspect(client, resource_server, token) == {"active": False}
    assert (len(first), len(again)) == (1, 0)


def test_fishing_evicts_only_other_unknown_credentials(client, resource_server, tokens, monkeypatch):
    """Unknown credentials have their own bounded cache: a flood of them can't push out a live token."""
    monkeypatch.setattr(revocation.unusable, "maxsize", 5)
    token = tokens()
    _warm(client, resource_server)
    assert _introspect(client, resource_server, token)["active"] is True  # cached
    forged = [credentials.mint("at") for _ in range(20)]
    for value in forged:
        assert _introspect(client, resource_server, value) == {"active": False}
    assert len(revocation.unusable._entries) == 5
    with CaptureQueriesContext(connection) as live:
        assert _introspect(client, resource_server, token)["active"] is True
    with CaptureQueriesContext(connection) as evicted:
        assert _introspect(client, resource_server, forged[0]) == {"active": False}
    assert (len(live), len(evicted)) == (0, 1)


def test_resumed_key_is_not_answered_from_the_inactive_cache(client, resource_server, service_client):
    from keys.services import api_key_resume, api_key_suspend

    app, _ = service_client
    key, plaintext = api_key_create(client=app, name="paused", audiences=[resource_server[0].audience])
    _warm(client, resource_server)
    api_key_suspend(key=key)
    for _ in range(2):
        assert _introspect(client, resource_server, plaintext) == {"active": False}
    api_key_resume(key=key)
    assert _introspect(client, resource_server, plaintext)["active"] is True


def test_rotated_resource_server_secret_is_not_served_from_the_cache(client, resource_server, tokens):
    rs, old_secret = resource_server
    token = tokens()
    assert _introspect(client, resource_server, token)["active"] is True  # cached authentication
    _, new_secret = client_secret_rotate(client=rs, grace=timedelta(0))
    assert introspect(client, rs, old_secret, token).status_code == 401
    assert introspect(client, rs, new_secret, token).json()["active"] is True


def test_retired_secret_inside_its_grace_still_authenticates(client, resource_server, tokens):
    rs, old_secret = resource_server
    token = tokens()
    client_secret_rotate(client=rs, grace=timedelta(hours=1))
    for _ in range(2):
        assert introspect(client, rs, old_secret, token).json()["active"] is True


def test_deleted_resource_server_is_not_served_from_the_cache(client, resource_server, tokens):
    rs, secret = resource_server
    token = tokens()
    assert _introspect(client, resource_server, token)["active"] is True
    rs.is_resource_server = False
    rs.audience = None
    rs.save()
    assert introspect(client, rs, secret, token).status_code == 401


def test_no_cached_answer_while_the_database_is_unreachable(client, resource_server, tokens, monkeypatch):
    token = tokens()
    assert _introspect(client, resource_server, token)["active"] is True
    monkeypatch.setattr(revocation, "_database_reachable", lambda: False)
    with CaptureQueriesContext(connection) as queries:
        assert _introspect(client, resource_server, token)["active"] is True
    assert len(queries) == 2  # resource server and token both read again


def test_database_ping_failure_distrusts_the_cache(monkeypatch):
    revocation.reset_for_tests()

    def broken() -> None:
        raise OSError("server closed the connection")

    monkeypatch.setattr(connection, "ensure_connection", broken)
    assert revocation._database_reachable() is False


def test_token_endpoint_does_not_read_back_the_token_it_wrote(client, service_client):
    app, secret = service_client
    with CaptureQueriesContext(connection) as queries:
        assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].lstrip().upper().startswith("SELECT") and "oauth_accesstoken" in q["sql"]
             and "token_checksum" in q["sql"]]
    assert reads == []


def test_token_endpoint_caches_the_client_and_its_scopes(client, service_client):
    app, secret = service_client
    assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200  # loads and caches
    with CaptureQueriesContext(connection) as queries:
        assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")
             and ("clients_client" in q["sql"] or "clients_scope" in q["sql"])]
    assert reads == []


def test_cached_client_follows_scope_and_secret_changes(client, service_client):
    from clients.models import Scope

    app, secret = service_client
    assert client_credentials(client, app, secret, scope="ai.admin").status_code == 200  # cached
    app.allowed_scopes.remove(Scope.objects.get(name="ai.admin"))
    refused = client_credentials(client, app, secret, scope="ai.admin")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200
    _, new_secret = client_secret_rotate(client=app, grace=timedelta(0))
    assert client_credentials(client, app, secret, scope="ai.infer").status_code == 401
    assert client_credentials(client, app, new_secret, scope="ai.infer").status_code == 200
    Scope.objects.filter(name="ai.infer").delete()  # the registry itself (cascades, no m2m signal)
    gone = client_credentials(client, app, new_secret, scope="ai.infer")
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_scope"


def test_generation_never_repeats_after_its_store_is_emptied(client, resource_server, tokens):
    """A Redis restarted without its data (or a deleted generation file) must not count again from
    1: a worker that cached an answer under an old value would serve it again once revocations
    bumped the counter back there. The cached token below is revoked only in the database, as if
    by another worker before the store was lost; it must not come back active."""
    from authserver.oauth.models import AccessToken

    token = tokens()
    _warm(client, resource_server)
    assert _introspect(client, resource_server, token)["active"] is True  # cached under the current value
    before = revocation.current()
    if settings.REDIS_URL:
        revocation._shared._client().delete(REDIS_KEY)
    else:
        revocation._shared._file().unlink()
    revocation.reset_for_tests()  # this process re-reads the (emptied) store
    values = [revocation.current()]
    for _ in range(5):
        values.append(revocation.bump())
    assert all(value > before for value in values), (before, values)
    assert values == sorted(set(values))
    AccessToken.objects.filter(token_checksum=credentials.digest(token)).delete()  # no bump: another worker's
    assert _introspect(client, resource_server, token) == {"active": False}


def test_a_client_credentials_token_is_written_in_one_statement(client, service_client):
    """Issue 17: on PostgreSQL the token and its audit event are one INSERT in autocommit, with the
    event's id drawn ahead (authserver.oauth.issuance); SQLite keeps the ORM's writes."""
    app, secret = service_client
    assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200  # caches the client
    with CaptureQueriesContext(connection) as queries:
        assert client_credentials(client, app, secret, scope="ai.infer").status_code == 200
    writes = [q["sql"] for q in queries.captured_queries
              if "oauth_accesstoken" in q["sql"] or "audit_auditevent" in q["sql"]]
    if connection.vendor == "postgresql":
        assert len(writes) == 1, writes
        assert writes[0].startswith("WITH token AS (INSERT INTO") and "audit_auditevent" in writes[0]
        assert not [q for q in queries.captured_queries if q["sql"].upper() in {"BEGIN", "COMMIT"}]
    else:
        assert [w.split()[0] for w in writes] == ["INSERT", "INSERT", "UPDATE"], writes
