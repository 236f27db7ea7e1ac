"""The hot lookups (token, API key, resource server by one indexed column) as prepared statements.

A miss of introspection's in-process cache costs one query. Built by the ORM on every call, that
query costs about as much Python as the rest of the request, and sent the way Django sends
queries with psycopg 3 (client-side binding, no prepared statements) PostgreSQL parses and plans
it again each time. A :class:`PreparedLookup` is written with the ORM once (so table and column names,
joins and value conversions stay Django's), compiled once per database vendor, and run through
Django's own cursor wrapper (database errors become ``DatabaseError``, so the endpoint fails
closed with 503; execute wrappers and query logging still see it, so tests count it). On
PostgreSQL the cursor binds server side and prepares the statement: it is parsed and planned once
per connection.

Bounded waits: every PostgreSQL session starts with ``lock_timeout`` and ``statement_timeout``
(``AUTHSERVER_DB_LOCK_TIMEOUT``, ``AUTHSERVER_DB_STATEMENT_TIMEOUT``; authserver/settings.py), so
a held lock or a runaway query fails the request with 503 instead of hanging it.
:func:`unbounded_waits` lifts them for one session where a long wait is the job (migrations).
The backend itself (discarding and retrying bad connections) is :mod:`authserver.db.postgresql`.

Prepared statements belong to a database session: behind a transaction-pooling PgBouncer older
than 1.21, set ``AUTHSERVER_DB_PREPARED_STATEMENTS=0`` (the statements are then sent unprepared).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

_PARAM = "\x00hotsql-parameter\x00"

_cursor_class: Any = None
_NEVER = 1 << 62


def _prepared_cursor_class() -> Any:
    """Django's server-binding psycopg cursor, preparing every statement it runs."""
    global _cursor_class
    if _cursor_class is None:
        # Django's psycopg 3 cursor (django.db.backends.postgresql.base); django-stubs lack it.
        from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

        class PreparedCursor(ServerBindingCursor):
            def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                        binary: bool | None = None) -> Any:
                # Django turns psycopg's preparation off (threshold None), which refuses even an
                # explicit prepare=True. Lift it for this statement only: with a threshold, psycopg
                # would also track every other query on the connection (Django's client-binding
                # cursors, which never prepare) and drop our statements at each ROLLBACK.
                connection = self.connection
                previous = connection.prepare_threshold
                if previous is None:
                    connection.prepare_threshold = _NEVER
                try:
                    return super().execute(query, params, prepare=True, binary=binary)
                finally:
                    connection.prepare_threshold = previous

            def _convert_query(self, query: Any, params: Any = None) -> Any:
                # Keep the statement where Django's query log looks for it (connection.queries,
                # assertNumQueries): the text with $1, never the parameter.
                converted = super()._convert_query(query, params)
                self._query = converted
                return converted

        _cursor_class = PreparedCursor
    return _cursor_class


def _cursor(connection: Any) -> Any:
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    # BaseDatabaseWrapper._cursor(), with a preparing cursor in place of create_cursor()'s.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_prepared_cursor_class()(connection.connection))


def prepared_cursor(connection: Any) -> Any:
    """A cursor that prepares what it runs on PostgreSQL (unless prepared statements are off), for
    a fixed statement on a hot path; Django's own cursor elsewhere."""
    return _cursor(connection)


class PreparedLookup:
    """A ``values()`` query on one parameter, fetched as at most one row (a unique column).

    ``build(param)`` returns the queryset for ``param``. Rows come back as dicts keyed by the
    ``values()`` names, converted as the ORM converts them.
    """

    def __init__(self, build: Callable[[str], QuerySet[Any]]) -> None:
        self._build = build
        self._compiled: dict[str, tuple[str, tuple[str, ...], list[tuple[int, list[Any], Any]]]] = {}
        self._lock = threading.Lock()

    def _compile(self, connection: Any) -> tuple[str, tuple[str, ...], list[tuple[int, list[Any], Any]]]:
        with self._lock:
            compiled = self._compiled.get(connection.alias)
            if compiled is not None:
                return compiled
            queryset = self._build(_PARAM).order_by()
            compiler = queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            if list(params) != [_PARAM]:
                raise ValueError(f"a PreparedLookup takes exactly one parameter, got {params!r}")
            # The values() names, in select order: private to QuerySet, absent from django-stubs.
            names = tuple(queryset._fields)  # type: ignore[attr-defined]
            if len(names) != len(compiler.select):
                raise ValueError("a PreparedLookup selects exactly its values() fields")
            converters = [(pos, convs, expr) for pos, (convs, expr) in
                          compiler.get_converters([col for col, _, _ in compiler.select]).items()]
            compiled = (sql, names, converters)
            self._compiled[connection.alias] = compiled
            return compiled

    def one(self, value: str) -> dict[str, Any] | None:
        connection = connections[DEFAULT_DB_ALIAS]
        sql, names, converters = self._compiled.get(connection.alias) or self._compile(connection)
        with _cursor(connection) as cursor:
            cursor.execute(sql, (value,))
            row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = list(row)
            for pos, convs, expr in converters:
                value = row[pos]
                for converter in convs:
                    value = converter(value, expr, connection)
                row[pos] = value
        return dict(zip(names, row, strict=True))

    def explain(self, value: str) -> str:
        """The plan the statement runs with: on PostgreSQL the *generic* plan a prepared statement
        settles on after a few executions (so an index scan chosen only for one literal value
        doesn't count); on SQLite, EXPLAIN QUERY PLAN."""
        connection = connections[DEFAULT_DB_ALIAS]
        sql, _, _ = self._compiled.get(connection.alias) or self._compile(connection)
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.execute("EXPLAIN QUERY PLAN " + sql, (value,))
                return "\n".join(" ".join(str(col) for col in row) for row in cursor.fetchall())
            statement = sql.replace("%s", "$1").replace("%%", "%")
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute("PREPARE hotsql_explain AS " + statement)
            try:
                cursor.execute("EXPLAIN EXECUTE hotsql_explain(%s)", (value,))
                return "\n".join(row[0] for row in cursor.fetchall())
            finally:
                cursor.execute("DEALLOCATE hotsql_explain")
                cursor.execute("RESET plan_cache_mode")

    def reset(self) -> None:
        """Forget compiled SQL (tests that swap database settings)."""
        with self._lock:
            self._compiled.clear()


@contextmanager
def unbounded_waits(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run without the bounded waits on this thread's session (PostgreSQL; a no-op on SQLite).

    For migrations: rewriting a large table may take longer than a request may, and a migration
    that gives up half-way through a release helps nobody. ``RESET`` at the end returns the session
    to the bounds it started with.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = 0")
        cursor.execute("SET statement_timeout = 0")
    try:
        yield
    finally:
        if connection.connection is not None and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
                cursor.execute("RESET statement_timeout")
