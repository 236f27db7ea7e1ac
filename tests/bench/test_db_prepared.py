"""The hot lookups' fixed statements (authserver/db/__init__.py) answer exactly what the ORM answers,
and on PostgreSQL run as prepared statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from authserver import credentials, db
from authserver.introspection import service as selectors
from authserver.oauth.models import AccessToken
from keys import selectors as key_selectors
from keys.models import ApiKey
from keys.services import api_key_create

pytestmark = pytest.mark.django_db


def _orm_token_row(digest: str) -> dict:
    return AccessToken.objects.filter(token_checksum=digest).values(
        "expires", "created", "scope", "resource", "application__client_id", "application__credentials_revoked_at",
        "user_id", "user__username").get()


def test_token_row_matches_the_orm(service_client, user):
    app, _ = service_client
    now = timezone.now()
    digest = credentials.digest(credentials.mint("at"))
    AccessToken.objects.create(token="", token_checksum=digest, application=app, user=user, scope="ai.infer",
                               expires=now + timedelta(minutes=5), resource=["https://api.example.test", "b"])
    row = selectors._ACCESS_TOKEN.one(digest)
    assert row == _orm_token_row(digest)
    assert row["resource"] == ["https://api.example.test", "b"]  # JSON decoded, as the ORM does
    assert row["expires"].tzinfo is not None and row["user__username"] == "alice"
    assert selectors._ACCESS_TOKEN.one(credentials.digest(credentials.mint("at"))) is None


def test_api_key_row_matches_the_orm(service_client, resource_server):
    app, _ = service_client
    key, plaintext = api_key_create(client=app, name="k", audiences=[resource_server[0].audience],
                                    allowed_ips=["10.0.0.0/8"], rate_limit=(5, 60), quota=9)
    digest = credentials.digest(plaintext)
    row = key_selectors.API_KEY.one(digest)
    assert row == ApiKey.objects.filter(pk=key.pk).values(*key_selectors.FIELDS).get()
    assert row["allowed_ips"] == ["10.0.0.0/8"] and row["id"] == key.pk


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_statement_is_prepared_on_postgresql_unless_turned_off(service_client, settings):
    digest = credentials.digest(credentials.mint("at"))
    selectors._ACCESS_TOKEN.one(digest)
    if connection.vendor != "postgresql":
        assert db._cursor(connection).cursor.__class__.__name__ != "PreparedCursor"
        return
    assert any("token_checksum" in statement for statement in _prepared_statements())
    settings.DB_PREPARED_STATEMENTS = False
    assert db._cursor(connection).cursor.__class__.__name__ != "PreparedCursor"
