"""A real Celery worker process, sharing the test database and broker with the test.

Embedded pass: the filesystem broker in the test data directory and the file-based SQLite test
database. Production pass: Redis and the PostgreSQL test database. Nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
        USER=db["USER"], PASSWORD=db["PASSWORD"], HOST=db["HOST"] or "localhost", PORT=db["PORT"] or 5432,
        NAME=db["NAME"],
    )


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the process lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "authserver", "worker", "--loglevel", "INFO",
             "--concurrency", "1", "--pool", "prefork", "--without-mingle", "--without-gossip",
             "-n", f"test-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text(errors="replace")[offset:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("celery worker died:\n" + self.log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        raise RuntimeError("celery worker not ready in 60 s:\n" + self.log_path.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def celery_worker_process(transactional_db: Any, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        AUTHSERVER_TESTING="1",
        AUTHSERVER_DATA_DIR=str(settings.DATA_DIR),
        DATABASE_URL=_database_url(),
        AUTHSERVER_CELERY_EAGER="0",
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
