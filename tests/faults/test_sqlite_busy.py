"""Fault, embedded deployment: another process holds SQLite's write lock (issue 12, item 1).

SQLite's busy timeout is ``AUTHSERVER_DB_LOCK_TIMEOUT`` (3 s by default; it was 20 s): a token
request that cannot get the write lock answers ``503 temporarily_unavailable`` with
``Retry-After`` within about that, never a hang. The PostgreSQL pass runs the same fault against a
real ``LOCK TABLE`` in tests/faults/test_lock_wait.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from django.conf import settings
from django.db import connection

from tests.bench.test_machine_handler import app, wsgi_call  # noqa: F401 - the app fixture
from tests.conftest import basic_auth

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite only: the PostgreSQL pass locks a "
                       "table of a live server instead (tests/faults/test_lock_wait.py)"),
]


def test_a_held_write_lock_answers_503_within_the_busy_timeout(app, service_client):  # noqa: F811
    svc, secret = service_client
    body, auth = "grant_type=client_credentials&scope=ai.infer", basic_auth(svc.client_id, secret)
    assert wsgi_call(app, "/oauth/token", body, auth)[0] == 200
    assert connection.settings_dict["OPTIONS"]["timeout"] == settings.DB_LOCK_TIMEOUT == 3.0

    other_process = sqlite3.connect(connection.settings_dict["NAME"], timeout=1, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")  # the write lock, as a worker's transaction holds it
        started = time.monotonic()
        status, headers, content = wsgi_call(app, "/oauth/token", body, auth)
        waited = time.monotonic() - started
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    assert status == 503, content[:300]
    assert json.loads(content)["error"] == "temporarily_unavailable" and headers["retry-after"] == "5"
    assert settings.DB_LOCK_TIMEOUT - 0.2 < waited < settings.DB_LOCK_TIMEOUT + 1
    assert wsgi_call(app, "/oauth/token", body, auth)[0] == 200
