# ruff: noqa: S603 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Where the bench runs: databases, Redis, the production environment of the servers it starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://auth.bench.test"
HOST = "127.0.0.1"

_started = time.monotonic()


def progress(message: str) -> None:
    """Progress goes to stderr; the table and the JSON path go to stdout."""
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def server_url() -> str:
    """The PostgreSQL server (any database on it); BENCH_DATABASE_URL or the CI/dev default."""
    return os.environ.get("BENCH_DATABASE_URL") or "postgres://authserver:authserver@localhost:5432/authserver"


def database_url(name: str) -> str:
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or "redis://localhost:6379/7"


def psql_connect(name: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(database_url(name), autocommit=True)


def recreate_database(name: str, template: str | None = None) -> None:
    """Drop and create ``name`` (bench databases only: they all start with ``authserver_bench``)."""
    assert name.startswith("authserver_bench"), name
    with psql_connect("postgres") as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def production_env(db_name: str, data_dir: Path, redis_db_url: str | None = None) -> dict[str, str]:
    """The environment production runs with (AUTHSERVER_ENV=production, DEBUG off), plain HTTP
    behind a "proxy" (the bench sends X-Forwarded-Proto: https)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "AUTHSERVER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="authserver.settings",
        AUTHSERVER_ENV="production",
        AUTHSERVER_SECRET_KEY="bench-" + "k" * 60,
        DATABASE_URL=database_url(db_name),
        REDIS_URL=redis_db_url or redis_url(),
        AUTHSERVER_ISSUER=ISSUER,
        AUTHSERVER_ALLOWED_HOSTS=f"{HOST},localhost",
        AUTHSERVER_BEHIND_PROXY="1",
        AUTHSERVER_DATA_DIR=str(data_dir),
        AUTHSERVER_ADMIN_PATH="admin-bench",
        AUTHSERVER_API_KEY_PREFIX="ak",
        AUTHSERVER_BENCH_BASELINE="1",
        AUTHSERVER_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        # Every request comes from one address and a handful of clients: the per-address and
        # per-client limits are raised so that they never refuse, but they are still counted the
        # way production counts them (same failure modes: a shared-store round trip on the token
        # endpoint, a per-process window on introspection).
        AUTHSERVER_RATE_LIMITS=json.dumps({name: f"{10**9}/60" for name in (
            "token.ip", "token.client", "token.auth_failure.ip", "introspect.rs", "revoke.ip")}),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def run_python(env: dict[str, str], module: str, *args: str, timeout: float = 1800) -> str:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout
