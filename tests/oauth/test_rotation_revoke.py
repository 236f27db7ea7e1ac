"""Revoking a refresh token (every rotation does) in set-based statements (issue 17), with DOT's
outcome: the access token gone, the row revoked, resource servers told, exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authserver import credentials
from authserver.oauth.models import AccessToken, RefreshToken
from authserver.revocation.models import RevocationEvent
from tests.helpers import authorize, code_from, exchange_code, pkce_pair, refresh

pytestmark = pytest.mark.django_db


def _pair(client: Any, web_client: Any, user: Any) -> dict[str, str]:
    app, secret = web_client
    client.force_login(user)
    verifier, challenge = pkce_pair()
    body: dict[str, str] = exchange_code(client, app, secret, code_from(authorize(client, app, challenge=challenge)),
                                         verifier).json()
    return body


def _events(since: int) -> set[tuple[str, str]]:
    return set(RevocationEvent.objects.filter(id__gt=since).values_list("kind", "digest"))


def _mark() -> int:
    return RevocationEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_revoke_deletes_the_access_token_marks_the_row_and_tells_resource_servers(client, web_client, user):
    body = _pair(client, web_client, user)
    row = RefreshToken.objects.get(token_checksum=credentials.digest(body["refresh_token"]))
    access_id = row.access_token_id
    since = _mark()
    row.revoke()
    assert not AccessToken.objects.filter(pk=access_id).exists()
    stored = RefreshToken.objects.get(pk=row.pk)
    assert stored.revoked is not None and stored.access_token_id is None and stored.updated == stored.revoked
    assert (row.revoked, row.access_token_id) == (stored.revoked, None)
    assert _events(since) == {("access_token", credentials.digest(body["access_token"])),
                              ("refresh_token", credentials.digest(body["refresh_token"]))}


def test_a_stale_instance_changes_nothing_more(client, web_client, user):
    """Two holders of the same row: the first revokes it; the second finds it revoked (DOT's path
    reads it afresh) and neither fails nor revokes it again."""
    body = _pair(client, web_client, user)
    first = RefreshToken.objects.get(token_checksum=credentials.digest(body["refresh_token"]))
    second = RefreshToken.objects.get(pk=first.pk)
    first.revoke()
    revoked_at = RefreshToken.objects.get(pk=first.pk).revoked
    second.revoke()
    assert RefreshToken.objects.get(pk=first.pk).revoked == revoked_at
    assert AccessToken.objects.filter(token_checksum=credentials.digest(body["access_token"])).count() == 0


def test_a_rotation_takes_no_savepoint_and_locks_the_old_row_once(client, web_client, user):
    app, secret = web_client
    body = _pair(client, web_client, user)
    with CaptureQueriesContext(connection) as queries:
        assert refresh(client, app, secret, body["refresh_token"]).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    # The test runs in a transaction, so the token endpoint's own atomic block is its one savepoint.
    assert sum(s.startswith("SAVEPOINT") for s in sql) == 1, sql
    assert sum(s.startswith("DELETE") and "oauth_accesstoken" in s for s in sql) == 1, sql
    if connection.vendor == "postgresql":  # SQLite has no FOR UPDATE: one writer at a time
        assert sum("oauth_refreshtoken" in s and "FOR UPDATE" in s for s in sql) == 1, sql
