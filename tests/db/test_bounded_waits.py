"""Bounded waits reach every connection: AUTHSERVER_DB_LOCK_TIMEOUT and AUTHSERVER_DB_STATEMENT_TIMEOUT
become PostgreSQL's startup ``options`` (kept beside any the URL gives) and SQLite's busy timeout;
the PostgreSQL engine is authserver's (authserver/db/postgresql/base.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG = "postgres://u:p@localhost/db"


def _database(tmp_path: Path, **env: str) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST", "AUTHSERVER_", "DJANGO_")) and k not in {"DATABASE_URL", "REDIS_URL"}}
    base.update(AUTHSERVER_DATA_DIR=str(tmp_path), **env)
    code = ("import json; from authserver import datadir; datadir.prepare(); from authserver import settings; "
            "print(json.dumps(settings.DATABASES['default'], default=str))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize(("env", "options"), [
    ({}, "-c lock_timeout=3000ms -c statement_timeout=10000ms"),
    ({"AUTHSERVER_DB_LOCK_TIMEOUT": "0.25", "AUTHSERVER_DB_STATEMENT_TIMEOUT": "0"}, "-c lock_timeout=250ms"),
    ({"DATABASE_URL": PG + "?options=-c%20search_path%3Dauth"},
     "-c search_path=auth -c lock_timeout=3000ms -c statement_timeout=10000ms"),
    ({"AUTHSERVER_DB_LOCK_TIMEOUT": "0", "AUTHSERVER_DB_STATEMENT_TIMEOUT": "0"}, None),
])
def test_postgresql_sessions_start_bounded(tmp_path, env, options):
    database = _database(tmp_path, **{"DATABASE_URL": PG, **env})
    assert database["ENGINE"] == "authserver.db.postgresql"
    assert dict(database.get("OPTIONS") or {}).get("options") == options


@pytest.mark.parametrize(("env", "timeout"), [({}, 3.0), ({"AUTHSERVER_DB_LOCK_TIMEOUT": "1.5"}, 1.5),
                                              ({"AUTHSERVER_DB_LOCK_TIMEOUT": "0"}, 5.0)])
def test_sqlite_busy_timeout_is_the_lock_timeout(tmp_path, env, timeout):
    database = _database(tmp_path, **env)
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert dict(database["OPTIONS"])["timeout"] == timeout  # type: ignore[call-overload]


def test_a_negative_wait_is_refused(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "AUTHSERVER_", "DJANGO_"))}
    base.update(AUTHSERVER_DATA_DIR=str(tmp_path), AUTHSERVER_DB_LOCK_TIMEOUT="-1")
    result = subprocess.run([sys.executable, "-c", "from authserver import settings"], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "AUTHSERVER_DB_LOCK_TIMEOUT" in result.stderr


def test_a_sqlite_database_url_keeps_the_sqlite_engine(tmp_path):
    """``DATABASE_URL=sqlite:///…`` (the job tests' workers use it) is not turned into PostgreSQL."""
    database = _database(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert "options" not in dict(database.get("OPTIONS") or {})
