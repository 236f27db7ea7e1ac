"""Every hot lookup is an index scan, on a table large enough that the planner has a choice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from authserver import credentials
from authserver.introspection import service as selectors
from authserver.oauth.models import AccessToken
from keys import selectors as key_selectors

pytestmark = pytest.mark.django_db

ROWS = 20_000


@pytest.fixture
def big_token_table(service_client):
    app, _ = service_client
    now = timezone.now()
    AccessToken.objects.bulk_create(
        [AccessToken(token="", token_checksum=credentials.digest(f"bench-explain-{i}"), application=app,
                     expires=now + timedelta(minutes=10), scope="ai.infer", resource=["https://api.example.test"])
         for i in range(ROWS)],
        batch_size=2_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return app




def _assert_index_lookup(plan: str, table: str) -> None:
    if connection.vendor == "postgresql":
        assert f"Seq Scan on {table}" not in plan, plan
        assert "Index Scan" in plan or "Index Only Scan" in plan, plan
    else:
        lines = [line for line in plan.splitlines() if table in line]
        assert lines and all("USING INDEX" in line or "USING INTEGER PRIMARY KEY" in line
                             or "USING COVERING INDEX" in line for line in lines), plan


# The statements the hot paths run (authserver/db/__init__.py), planned as prepared statements are.
def test_access_token_lookup_is_an_index_scan(big_token_table):
    assert AccessToken.objects.count() >= ROWS
    _assert_index_lookup(selectors._ACCESS_TOKEN.explain(credentials.digest("bench-explain-7")), "oauth_accesstoken")


def test_resource_server_lookup_is_an_index_scan(big_token_table, resource_server):
    if connection.vendor == "postgresql":
        # The clients table is tiny here, so a sequential scan would be the right plan; force the
        # question the production-sized table asks.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    _assert_index_lookup(selectors._RESOURCE_SERVER.explain(resource_server[0].client_id), "clients_client")


def test_api_key_lookup_is_an_index_scan(big_token_table):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    _assert_index_lookup(key_selectors.API_KEY.explain(credentials.digest("bench-explain-key")), "keys_apikey")


def test_credential_digests_have_no_pattern_index_twin():
    """Only the unique B-tree on each digest: no ``varchar_pattern_ops`` copy competing for the cache."""
    tables = {"oauth_accesstoken", "oauth_grant", "keys_apikey"}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
        else:
            cursor.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        definitions = [(table, sql) for table, sql in cursor.fetchall() if table in tables]
    columns = ("(token_checksum", "(digest", "(code")
    digests = [sql for _, sql in definitions if any(column in sql for column in columns)]
    assert not [sql for sql in digests if "pattern_ops" in sql], digests
    if connection.vendor == "postgresql":
        assert len(digests) == 3 and all("UNIQUE" in sql for sql in digests), digests
