"""Django's PostgreSQL backend, with two rules about connections that went bad.

**Discard at once.** A statement that fails because of the *session* rather than the statement
(SQLSTATE class 08 connection exception, 57P01-57P05 shutdown/termination, or 25006: the session
is read-only because it was opened while ``default_transaction_read_only`` was on) marks its
connection obsolete, so Django closes it when the request (or Celery task) ends instead of asking
``SELECT 1`` whether it still works. A read-only session answers ``SELECT 1`` perfectly well: it
used to be kept until ``CONN_MAX_AGE`` ran out, and token issuance answered 503 for ten minutes
after the database had become writable again (issue 12, item 5). A lock or statement timeout
(55P03, 57014) says nothing about the session and keeps it.

**Retry once, only before anything ran.** The machine handler skips Django's per-request health
check on a connection that served a request less than a second ago (authserver/handlers.py); it
then sets ``retry_first_statement`` on the connection. If the request's first statement finds the
connection dead (the server restarted in between), it is run again, once, on a fresh connection,
provided that nothing can have happened yet: outside any transaction (autocommit, no ``atomic``
block: nothing earlier to lose or replay) and a ``SELECT`` (a write whose connection died under
it may have committed; it is never sent twice). Anything else fails closed (503) as before.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.db.backends.postgresql import base

# A failure of the session, not of the statement: the connection is of no further use.
SESSION_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03", "57P04", "57P05"})
# The server went away before the statement could run (a restart, a terminated backend).
GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the psycopg error under Django's wrapper, if the server sent one."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return getattr(cause, "sqlstate", None)


def _broken(raw: Any) -> bool:
    # psycopg gives no SQLSTATE when the socket itself failed ("server closed the connection
    # unexpectedly"); the connection then knows it is broken.
    return raw is None or bool(getattr(raw, "broken", False) or getattr(raw, "closed", False))


def session_failed(exc: BaseException, raw: Any) -> bool:
    """Did ``exc`` (raised on psycopg connection ``raw``) end that connection's usefulness?"""
    sqlstate = _sqlstate(exc)
    if sqlstate is None:
        return _broken(raw)
    return sqlstate.startswith("08") or sqlstate in SESSION_SQLSTATES


def server_gone(exc: BaseException, raw: Any) -> bool:
    """Did the server end the session before the statement could run (a restart, a termination)?"""
    sqlstate = _sqlstate(exc)
    if sqlstate is None:
        return _broken(raw)
    return sqlstate.startswith("08") or sqlstate in GONE_SQLSTATES


def _fresh_cursor(connection: Any, old: Any) -> Any:
    from authserver.db import _prepared_cursor_class

    if isinstance(old, _prepared_cursor_class()):
        return _prepared_cursor_class()(connection.connection)
    return connection.create_cursor()


def guard(execute: Any, sql: Any, params: Any, many: Any, context: dict[str, Any]) -> Any:
    """The execute wrapper every connection carries (outermost): discard and retry, as above."""
    connection = context["connection"]
    retryable = connection.retry_first_statement
    connection.retry_first_statement = False
    raw = connection.connection
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        if not session_failed(exc, raw):
            raise
        # Obsolete now: Django's end-of-request (and Celery's end-of-task) check closes it.
        connection.close_at = float("-inf")
        wrapper = context["cursor"]
        if not (retryable and server_gone(exc, raw) and not connection.in_atomic_block and connection.autocommit
                and isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"
                and getattr(wrapper.cursor, "name", None) is None):
            raise
        old = wrapper.cursor
        connection.close()
        connection.ensure_connection()  # the database really down: this raises, and the request fails closed
        wrapper.cursor = _fresh_cursor(connection, old)
        return execute(sql, params, many, context)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_first_statement = False
        self.execute_wrappers.insert(0, guard)
