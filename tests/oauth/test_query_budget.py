"""The code exchange reads its authorization code once, not once per oauthlib question."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import authorize, code_from, exchange_code, pkce_pair

pytestmark = pytest.mark.django_db


def test_code_exchange_reads_the_grant_once(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, app, challenge=challenge))
    with CaptureQueriesContext(connection) as queries:
        assert exchange_code(client, app, secret, code, verifier).status_code == 200
    grant_selects = [q["sql"] for q in queries.captured_queries
                     if q["sql"].lstrip().upper().startswith("SELECT") and 'FROM "oauth_grant"' in q["sql"]]
    # validate_code's read, plus DOT's resource narrowing (RFC 8707), which reads it on its own.
    assert len(grant_selects) == 2, [sql[:120] for sql in grant_selects]
