"""A throwaway PostgreSQL 15 server that a test may kill and restart at will."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ThrowawayPostgres:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 server binaries not found in {PG_BIN}")
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.base = Path(tempfile.mkdtemp(prefix="authserver-pg-"))
        self.data = self.base / "pgdata"
        self.socket_dir = self.base / "sock"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str) -> None:
        argv = [*(["runuser", "-u", self.user, "--"] if self.user else []), *cmd]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {result.stdout[-1000:]} {result.stderr[-1000:]}")

    @property
    def url(self) -> str:
        return f"postgres://authserver@127.0.0.1:{self.port}/authserver"

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self.user:
            shutil.chown(self.base, self.user)
            shutil.chown(self.socket_dir, self.user)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "authserver", "--no-sync")
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "authserver", "authserver")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.base / "pg.log"), "-o",
                  f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def kill(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.kill()
        except RuntimeError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
