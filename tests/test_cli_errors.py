"""The command line with a dependency down: one JSON error line on stderr, exit 1, no traceback
(issue 12 item 7: raw tracebacks with Redis down, the database read-only, the disk full)."""

from __future__ import annotations

import errno
import json

import pytest
import redis
from django.core.management import call_command
from django.db import OperationalError

pytestmark = pytest.mark.django_db

CASES = [
    pytest.param(redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
                 "redis (the counter store) is unavailable", id="redis-down"),
    pytest.param(OperationalError("cannot execute INSERT in a read-only transaction"),
                 "the database is read-only", id="database-read-only"),
    pytest.param(OperationalError("connection to server at db failed"), "the database is unavailable",
                 id="database-down"),
    pytest.param(OSError(errno.ENOSPC, "No space left on device"), "no space left on device", id="disk-full"),
]


@pytest.mark.parametrize(("error", "detail"), CASES)
def test_a_dependency_down_is_one_json_line(monkeypatch, capsys, error, detail):
    def down(**_):
        raise error

    monkeypatch.setattr("keys.management.commands.scope.scope_create", down)
    with pytest.raises(SystemExit) as exited:
        call_command("scope", "create", "ai.infer")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert json.loads(lines[0]) == {"error": "unavailable", "detail": detail}
    assert "Traceback" not in err and "6379" not in err and "INSERT" not in err


@pytest.mark.parametrize(("error", "detail"), CASES)
def test_the_key_store_commands_answer_a_dependency_down_the_same_way(monkeypatch, capsys, error, detail):
    """``keys``, ``backup`` and ``restore`` print their own (non-JSON) results, but a dependency down
    is the same one JSON line as every other command's."""

    def down(*_, **__):
        raise error

    monkeypatch.setattr("authserver.crypto.rotation.status", down)
    with pytest.raises(SystemExit) as exited:
        call_command("keys", "status")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert [json.loads(line) for line in err.strip().splitlines()] == [{"error": "unavailable", "detail": detail}]
