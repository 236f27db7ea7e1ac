"""Start the real server (``manage.py serve``) as a subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "e2e-admin-password-Zq8!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _migrations_digest() -> str:
    """What the migrated schema depends on: every migration file's path and content."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("**/migrations/*.py")):
        if ".venv" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _migrated_template(admin_url: str, base_url: str) -> str:
    """A database migrated once per schema (and per machine), that fresh databases are copied from.

    ``serve`` then finds nothing to migrate: about 10 s less per server start on PostgreSQL. The
    template holds only what migrations create (content types, permissions, the default scopes and
    beat schedules): nothing tied to a key store, so every server still starts with its own.
    """
    import psycopg

    name = f"e2e_template_{_migrations_digest()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('authserver e2e template'))")
        try:
            ready = conn.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if ready is None or not ready[0]:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                _migrate(base_url, name)
                conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('authserver e2e template'))")
    return name


def _migrate(base_url: str, name: str) -> None:
    import tempfile
    from urllib.parse import urlsplit, urlunsplit

    url = urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS"))}
        env.update(DATABASE_URL=url, AUTHSERVER_DATA_DIR=data_dir)
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True,
                       timeout=300, capture_output=True)


def _migrated_sqlite() -> Path:
    """The embedded database, migrated once per schema per machine: copied into each server's data
    directory before it starts (the same saving as the PostgreSQL template)."""
    import shutil
    import tempfile

    target = Path(tempfile.gettempdir()) / f"authserver-e2e-{_migrations_digest()}.sqlite3"
    if not target.exists():
        with tempfile.TemporaryDirectory() as data_dir:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS")) and k not in {"DATABASE_URL", "REDIS_URL"}}
            env.update(AUTHSERVER_DATA_DIR=data_dir)
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True,
                           timeout=300, capture_output=True)
            partial = target.with_suffix(f".{os.getpid()}.part")
            shutil.copyfile(Path(data_dir) / "db.sqlite3", partial)
            partial.replace(target)  # atomic: a concurrent session sees the whole file or none
    return target


def fresh_database(base_url: str, *, migrated: bool = True) -> str:
    """Create a database next to ``base_url``'s; dropped at interpreter exit.

    ``migrated``: a copy of the migrated template (what a server start needs); False for an empty
    one, for tests of the first run itself (``serve`` applying every migration).
    """
    import atexit
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"e2e_{secrets.token_hex(6)}"
    parts = urlsplit(base_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    template = _migrated_template(admin_url, base_url) if migrated else None
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop() -> None:
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass

    atexit.register(drop)
    return urlunsplit(parts._replace(path=f"/{name}"))


def server_env(data_dir: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    # The production pass gives each server a fresh database of its own (its key store is fresh too,
    # and must never meet data encrypted under another one).
    if os.environ.get("AUTHSERVER_E2E_DATABASE_URL"):
        env["DATABASE_URL"] = fresh_database(os.environ["AUTHSERVER_E2E_DATABASE_URL"])
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/3"
            import redis

            redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # no counts or queues from an earlier server
    elif not (data_dir / "db.sqlite3").exists():
        import shutil

        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_sqlite(), data_dir / "db.sqlite3")
    env.update(AUTHSERVER_DATA_DIR=str(data_dir), AUTHSERVER_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1")
    env.update(overrides or {})
    return env


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    @property
    def cert(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    def manage(self, *args: str) -> dict[str, object]:
        """Run a JSON CLI command against the server's database; return its JSON object."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def start_server(
    data_dir: Path, *extra: str, timeout: float = 120, env_overrides: dict[str, str] | None = None,
    port: int | None = None,
) -> RunningServer:
    port = port or free_port()
    env = server_env(data_dir, env_overrides)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    server = RunningServer(proc=proc, base_url=f"https://127.0.0.1:{port}", data_dir=data_dir, env=env)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.output.append(line)
            if line.strip() == "Ready.":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("serve did not become ready:\n" + "".join(server.output)[-4000:])
    return server
