"""Every way to revoke records what resource servers must forget (C7), by digest, in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from authserver import credentials, revocation
from authserver.oauth.models import AccessToken, RefreshToken
from authserver.oauth.services import access_tokens_revoke, refresh_tokens_revoke
from authserver.revocation import feed
from authserver.revocation.models import RevocationEvent
from clients.models import Scope
from clients.services import client_revoke_tokens
from keys import deletion
from keys.services import (
    api_key_create,
    api_key_resume,
    api_key_revoke,
    api_key_rotate,
    api_key_suspend,
    compromise_response_start,
)
from tests.conftest import basic_auth
from tests.helpers import REVOKE_URL, authorize, client_credentials, code_from, exchange_code, pkce_pair, refresh
from tests.helpers import staff_login as login

pytestmark = pytest.mark.django_db


def _recorded(since: int) -> list[tuple[str, str, str]]:
    return list(RevocationEvent.objects.filter(id__gt=since).order_by("id").values_list("kind", "digest", "client_id"))


def _mark() -> int:
    return RevocationEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


class World:
    """Credentials of one client, and the plaintexts (to check no event ever holds one)."""

    def __init__(self, service_client: Any, web_client: Any, user: Any) -> None:
        self.http = HttpClient()
        self.app, self.secret = service_client
        self.web, self.web_secret = web_client
        self.user = user
        self.plaintexts: list[str] = []

    def access_token(self) -> str:
        token = client_credentials(self.http, self.app, self.secret).json()["access_token"]
        self.plaintexts.append(token)
        return token

    def code_tokens(self) -> dict[str, str]:
        login(self.http, self.user)
        verifier, challenge = pkce_pair()
        body = exchange_code(self.http, self.web, self.web_secret,
                             code_from(authorize(self.http, self.web, challenge=challenge)), verifier).json()
        self.plaintexts += [body["access_token"], body["refresh_token"]]
        return body

    def api_key(self) -> tuple[Any, str]:
        key, plaintext = api_key_create(client=self.app, name="k", scopes=["ai.infer"])
        self.plaintexts.append(plaintext)
        return key, plaintext

    def revoke(self, token: str, client: Any, secret: str) -> None:
        response = self.http.post(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic_auth(client.client_id, secret))
        assert response.status_code == 200


D = credentials.digest


def _revoke_access_token(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    token = w.access_token()
    w.revoke(token, w.app, w.secret)
    return lambda: {("access_token", D(token), "")}


def _revoke_refresh_token(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    body = w.code_tokens()
    w.revoke(body["refresh_token"], w.web, w.web_secret)
    return lambda: {("refresh_token", D(body["refresh_token"]), ""), ("access_token", D(body["access_token"]), "")}


def _refresh_reuse(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    first = w.code_tokens()
    second = refresh(w.http, w.web, w.web_secret, first["refresh_token"]).json()
    w.plaintexts += [second["access_token"], second["refresh_token"]]
    assert refresh(w.http, w.web, w.web_secret, first["refresh_token"]).status_code == 400  # reuse: the family goes
    return lambda: {("access_token", D(first["access_token"]), ""), ("refresh_token", D(first["refresh_token"]), ""),
                    ("refresh_token", D(second["refresh_token"]), ""), ("access_token", D(second["access_token"]), "")}


def _admin_access_tokens(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    token = w.access_token()
    access_tokens_revoke(pks=AccessToken.objects.filter(token_checksum=D(token)).values_list("pk", flat=True),
                         actor="test")
    return lambda: {("access_token", D(token), "")}


def _admin_refresh_tokens(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    body = w.code_tokens()
    refresh_tokens_revoke(pks=RefreshToken.objects.values_list("pk", flat=True), actor="test")
    return lambda: {("refresh_token", D(body["refresh_token"]), ""), ("access_token", D(body["access_token"]), "")}


def _key_action(action: Callable[..., Any]) -> Callable[[World], Callable[[], set[tuple[str, str, str]]]]:
    def run(w: World) -> Callable[[], set[tuple[str, str, str]]]:
        key, plaintext = w.api_key()
        action(key)
        return lambda: {("api_key", D(plaintext), "")}
    return run


def _key_resume(key: Any) -> None:
    api_key_suspend(key=key, actor="test")
    api_key_resume(key=key, actor="test")


def _key_rotate(grace: timedelta) -> Callable[[Any], None]:
    def rotate(key: Any) -> None:
        api_key_rotate(key=key, grace=grace, actor="test")
    return rotate


def _client_cut(action: Callable[[Any], Any]) -> Callable[[World], Callable[[], set[tuple[str, str, str]]]]:
    def run(w: World) -> Callable[[], set[tuple[str, str, str]]]:
        w.access_token()
        w.api_key()
        client_id = w.app.client_id
        action(w.app)
        return lambda: {("client", "", client_id)}
    return run


def _scope_delete(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    w.access_token()
    deletion.scope_delete(scope=Scope.objects.get(name="ai.admin"), force=True, actor="test")
    return lambda: {("generation", "", "")}


def _client_edit(w: World) -> Callable[[], set[tuple[str, str, str]]]:
    w.app.name = "renamed"
    w.app.save()
    return lambda: {("generation", "", "")}


PATHS = {
    "rfc7009-access-token": _revoke_access_token,
    "rfc7009-refresh-token": _revoke_refresh_token,
    "refresh-reuse-detection": _refresh_reuse,
    "admin-revoke-access-tokens": _admin_access_tokens,
    "admin-revoke-refresh-tokens": _admin_refresh_tokens,
    "api-key-revoke": _key_action(lambda key: api_key_revoke(key=key, actor="test")),
    "api-key-suspend": _key_action(lambda key: api_key_suspend(key=key, actor="test")),
    "api-key-resume": _key_action(_key_resume),
    "api-key-delete": _key_action(lambda key: deletion.api_key_delete(key=key, actor="test")),
    "api-key-rotate-with-grace": _key_action(_key_rotate(timedelta(hours=1))),
    "api-key-rotate-no-grace": _key_action(_key_rotate(timedelta(0))),
    "compromise-response": _client_cut(lambda app: compromise_response_start(client=app, actor="test")),
    "client-revoke-tokens": _client_cut(lambda app: client_revoke_tokens(client=app, actor="test")),
    "client-delete": _client_cut(lambda app: deletion.client_delete(client=app, actor="test")),
    "scope-delete-force": _scope_delete,
    "client-edit": _client_edit,
}


@pytest.mark.parametrize("path", PATHS)
def test_every_revocation_path_records_its_events(path, service_client, web_client, user):
    world = World(service_client, web_client, user)
    since = _mark()
    expected = PATHS[path](world)()
    # Issuing credentials before the revocation recorded nothing: only what the revocation did.
    recorded = _recorded(since)
    assert expected <= set(recorded), recorded
    if path.startswith(("rfc7009", "admin-revoke", "refresh-reuse", "api-key")):
        assert ("generation", "", "") not in recorded  # a precise revocation never flushes everything
    for kind, digest, client_id in recorded:
        assert kind in {"access_token", "refresh_token", "api_key", "client", "generation"}
        assert all(secret not in (digest, client_id) for secret in world.plaintexts)


def test_issuing_records_nothing(service_client, web_client, user):
    world = World(service_client, web_client, user)
    since = _mark()
    world.access_token()
    world.code_tokens()
    world.api_key()
    assert _recorded(since) == []


def test_a_rolled_back_revocation_records_nothing(service_client, web_client, user):
    world = World(service_client, web_client, user)
    key, _ = world.api_key()
    since = _mark()
    with pytest.raises(RuntimeError), transaction.atomic():
        api_key_revoke(key=key, actor="test")
        raise RuntimeError("rolled back")
    assert _recorded(since) == []


def test_an_invalidation_that_names_nothing_flushes_everything(db):
    since = _mark()
    revocation.invalidate()
    assert _recorded(since) == [("generation", "", "")]


def test_a_rotation_records_its_events_last_before_the_commit(service_client, web_client, user):
    """Refresh rotation revokes the old pair on every refresh: its events (and, on PostgreSQL, the
    order lock they take) come after every other statement of the exchange, so refreshes
    serialise on that lock only for the insert and the commit."""
    world = World(service_client, web_client, user)
    first = world.code_tokens()
    since = _mark()
    with CaptureQueriesContext(connection) as queries:
        second = refresh(world.http, world.web, world.web_secret, first["refresh_token"])
    assert second.status_code == 200
    world.plaintexts += [second.json()["access_token"], second.json()["refresh_token"]]
    assert set(_recorded(since)) == {("access_token", D(first["access_token"]), ""),
                                     ("refresh_token", D(first["refresh_token"]), "")}
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    feed_at = [i for i, sql in enumerate(statements)
               if "revocation_revocationevent" in sql or "pg_advisory_xact_lock" in sql]
    # One lock (PostgreSQL) and one INSERT of both events, after everything else.
    assert len(feed_at) == (2 if connection.vendor == "postgresql" else 1), statements
    assert feed_at == list(range(len(statements) - len(feed_at), len(statements))), statements


def test_gathered_events_are_checked_at_once_and_dropped_with_an_exception(db):
    since = _mark()
    with pytest.raises(ValueError, match="revocation event"), transaction.atomic(), feed.gathered():
        feed.record([feed.Revoked("access_token", "at_" + "a" * 61)])
    with pytest.raises(RuntimeError), transaction.atomic(), feed.gathered():
        feed.record([feed.Revoked("access_token", "a" * 64)])
        raise RuntimeError("rolled back")
    assert _recorded(since) == []
    with transaction.atomic(), feed.gathered():
        feed.record([feed.Revoked("access_token", "a" * 64)])
        feed.record([feed.Revoked("access_token", "a" * 64), feed.Revoked("refresh_token", "b" * 64)])
        assert _recorded(since) == []  # kept until the block ends
    assert _recorded(since) == [("access_token", "a" * 64, ""), ("refresh_token", "b" * 64, "")]


@pytest.mark.parametrize("event", [
    feed.Revoked("access_token", "at_" + "a" * 61),  # a credential, not a digest
    feed.Revoked("access_token", "A" * 64),
    feed.Revoked("api_key", ""),
    feed.Revoked("generation", "a" * 64),
    feed.Revoked("client", ""),
    feed.Revoked("generation", client_id="c"),
    feed.Revoked("password", "a" * 64),
], ids=["credential", "upper-case", "no-digest", "generation-with-digest", "client-without-id",
        "generation-with-client", "unknown-kind"])
def test_malformed_events_are_refused(db, event):
    since = _mark()
    with pytest.raises(ValueError, match="revocation event"):
        feed.record([event])
    assert _recorded(since) == []


def test_prune_keeps_a_suffix_and_the_newest_row(db, settings):
    settings.REVOCATIONS_RETENTION_SECONDS = 100
    for at in (10.0, 20.0, 500.0, 30.0):  # ids in order; the last one is old but the newest
        RevocationEvent.objects.create(kind="generation", at=at)
    ids = list(RevocationEvent.objects.order_by("id").values_list("id", flat=True))
    assert feed.prune(now=1000.0) == 3
    assert list(RevocationEvent.objects.values_list("id", flat=True)) == [ids[-1]]
    assert feed.prune(now=1000.0) == 0


def test_prune_leaves_what_is_within_retention(db, settings):
    settings.REVOCATIONS_RETENTION_SECONDS = 100
    old = RevocationEvent.objects.create(kind="generation", at=850.0)
    kept = [RevocationEvent.objects.create(kind="generation", at=at).id for at in (950.0, 990.0)]
    assert feed.prune(now=1000.0) == 1
    assert not RevocationEvent.objects.filter(id=old.id).exists()
    assert list(RevocationEvent.objects.order_by("id").values_list("id", flat=True)) == kept


def test_the_prune_task_is_scheduled(db):
    from django_celery_beat.models import PeriodicTask

    from authserver.revocation.tasks import prune_events

    assert PeriodicTask.objects.filter(task="authserver.revocation.prune_events", enabled=True).exists()
    assert prune_events.name == "authserver.revocation.prune_events"
