"""Fault, in process: a connection whose session failed is discarded at once; a dead connection
is retried once, only where nothing can have happened yet (authserver/db/postgresql/base.py).

Real PostgreSQL sessions are terminated (``pg_terminate_backend``: what a restart does to them) or
made read-only (``SET SESSION CHARACTERISTICS``: what ``default_transaction_read_only`` does to a
session opened while it is on) from the test. PostgreSQL only: SQLite has no server session to lose.
"""

from __future__ import annotations

import os
import select
import time

import pytest
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="PostgreSQL only: SQLite has no server session"),
]


def _backend_pid() -> int:
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def _as_admin(sql: str, *params: object) -> None:
    admin = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql, list(params))
    finally:
        admin.close()


def _terminate_session() -> int:
    """End this thread's session from another one, as a server restart would; wait until it shows."""
    pid = _backend_pid()
    _as_admin("SELECT pg_terminate_backend(%s)", pid)
    readable, _, _ = select.select([connection.connection.fileno()], [], [], 5)
    assert readable, "the terminated session's socket never said so"
    return pid


def _discarded_at_request_end() -> bool:
    connection.close_if_unusable_or_obsolete()  # what Django runs at the end of every request
    return connection.connection is None


def test_a_select_on_a_dead_unchecked_connection_is_retried_once_on_a_fresh_one():
    dead = _terminate_session()
    connection.retry_first_statement = True  # the machine handler skipped the health check
    assert Group.objects.count() == 0
    assert _backend_pid() != dead
    assert connection.retry_first_statement is False  # once per request, first statement only


@pytest.mark.parametrize("why", ["checked", "not first"])
def test_no_retry_unless_the_health_check_was_skipped_and_nothing_ran(why):
    if why == "not first":
        connection.retry_first_statement = True
        Group.objects.count()  # a statement ran in this request: the flag is spent
    _terminate_session()
    with pytest.raises(DatabaseError):
        Group.objects.count()
    assert _discarded_at_request_end()
    assert Group.objects.count() == 0  # and the next request has a working connection


def test_a_write_is_never_retried():
    """The statement may have reached the server before the session died: sent once, never twice."""
    _terminate_session()
    connection.retry_first_statement = True
    with pytest.raises(DatabaseError):
        Group.objects.create(name="sent-at-most-once")
    assert _discarded_at_request_end()
    assert not Group.objects.filter(name="sent-at-most-once").exists()


def test_nothing_inside_a_transaction_is_retried():
    dead = _terminate_session()
    connection.retry_first_statement = True
    with pytest.raises(DatabaseError), transaction.atomic():
        Group.objects.count()
    # Django itself drops a connection whose ROLLBACK failed at the end of the atomic block.
    assert Group.objects.count() == 0
    assert _backend_pid() != dead


def test_a_read_only_session_is_discarded_at_once():
    """Issue 12 item 5: a session opened while the database was read-only stays read-only; it used
    to pass Django's SELECT 1 check and was kept until CONN_MAX_AGE (10 min of 503s)."""
    Group.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    with pytest.raises(DatabaseError) as refused:
        Group.objects.create(name="read-only")
    assert getattr(refused.value.__cause__, "sqlstate", None) == "25006"
    assert _discarded_at_request_end()
    Group.objects.create(name="writable-again")  # a fresh session, read-write
    assert Group.objects.filter(name="writable-again").exists()


def test_a_lock_timeout_keeps_the_connection():
    """A timeout says nothing about the session: no reconnect for it."""
    from django.conf import settings

    Group.objects.create(name="locked")
    holder = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM auth_group WHERE name = 'locked' FOR UPDATE")
        pid = _backend_pid()
        started = time.monotonic()
        with pytest.raises(DatabaseError) as refused:
            Group.objects.filter(name="locked").update(name="still-locked")
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert getattr(refused.value.__cause__, "sqlstate", None) == "55P03"  # lock_not_available
    assert settings.DB_LOCK_TIMEOUT - 0.2 < waited < settings.DB_LOCK_TIMEOUT + 1
    assert not _discarded_at_request_end()
    assert _backend_pid() == pid
