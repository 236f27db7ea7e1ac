"""Writing an issued access token and its audit event (issue 17: one round trip per token).

Through the ORM a token costs five round trips: BEGIN, INSERT token, the audit event's id (its
personal data's ciphertext is bound to it), INSERT event, COMMIT. On PostgreSQL this writes both
rows with one statement in autocommit, ``WITH token AS (INSERT ...) INSERT INTO audit ...``: one
statement is atomic, so the token never exists without its record (docs/decisions/0008-fail-closed.md),
and the event's id comes from a block drawn ahead (authserver.audit.services.audit_pending). The
statement is prepared once per connection (authserver.db). The token's ``pre_save`` and
``post_save`` signals are sent as ``Model.save`` sends them. Elsewhere (SQLite) the rows are
written the ORM's way in one transaction. The sealer chains the event after it commits, as any
other (authserver.audit.sealer).
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_save, pre_save
from oauth2_provider.models import get_access_token_model

from authserver import db
from authserver.audit.services import audit_pending, audit_pending_written, audit_record

AccessToken = get_access_token_model()

_built: dict[str, tuple[str, list[Any]]] = {}
_lock = threading.Lock()


def _token_insert(connection: Any) -> tuple[str, list[Any]]:
    """The token's INSERT (every concrete column but the id) and its fields, built once per database."""
    with _lock:
        if connection.alias not in _built:
            ops = connection.ops
            fields = [f for f in AccessToken._meta.local_concrete_fields if not f.primary_key]
            columns = ", ".join(ops.quote_name(f.column) for f in fields)
            table = ops.quote_name(AccessToken._meta.db_table)
            sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id"  # noqa: S608
            _built[connection.alias] = (sql, fields)
        return _built[connection.alias]


def access_token_save(*, token: Any, event: dict[str, Any]) -> None:
    """INSERT the unsaved AccessToken ``token`` and the audit event ``event`` (the keyword
    arguments of :func:`authserver.audit.services.audit_record`), both or neither."""
    connection = connections[DEFAULT_DB_ALIAS]
    pending = audit_pending(**event)
    if pending is None:
        with transaction.atomic(savepoint=False):
            token.save()
            audit_record(**event)
        return
    sender = AccessToken
    pre_save.send(sender=sender, instance=token, raw=False, using=connection.alias, update_fields=None)
    insert, fields = _token_insert(connection)
    params = [f.get_db_prep_save(f.pre_save(token, True), connection) for f in fields]
    with db.prepared_cursor(connection) as cursor:
        statement = f"WITH token AS ({insert}) {pending.sql} RETURNING (SELECT id FROM token)"  # noqa: S608 - fixed identifiers
        cursor.execute(statement, [*params, *pending.params])
        token.pk = cursor.fetchone()[0]
    token._state.adding = False
    token._state.db = connection.alias
    audit_pending_written(pending)
    post_save.send(sender=sender, instance=token, created=True, update_fields=None, raw=False,
                   using=connection.alias)
