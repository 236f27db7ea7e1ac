"""The state a bench run shares between its scenarios: sizes, seed, the servers it started, its
work directory, and how a scenario starts a server or replays a request file with wrk."""

from __future__ import annotations

import argparse
import base64
import http.client
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from bench import data, env, load, servers
from bench.env import HOST, progress

BARE_PATH = "/bench/bare"  # authserver.machine.BASELINE_PATH, mounted by AUTHSERVER_BENCH_BASELINE=1

T = TypeVar("T")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = data.SMALL if args.small else data.Sizes()
        for f in fields(data.Sizes):
            value = getattr(args, f.name, None)
            if value is not None:
                setattr(self.sizes, f.name, value)
        self.seed = args.seed
        self.work = Path(tempfile.mkdtemp(prefix="authserver-bench-"))
        self.running: list[servers.Server] = []
        self.offsets: dict[str, int] = {}
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible pseudo-random data
        # The request lines of each main-database scenario (bench.workload.request_sets).
        self.lines: dict[str, list[tuple[str, str]]] = {}

    def data_dir(self, db: str) -> Path:
        """One data directory for every process: the databases are cloned from one template, so
        they share the template's wrapped data keys and need its key store."""
        path = self.work / "data"
        path.mkdir(exist_ok=True)
        return path

    def start(self, kind: str, db: str, name: str, redis_db: int = 7) -> servers.Server:
        data_dir = self.data_dir(db)
        server_env = env.production_env(db, data_dir, env.redis_url().rsplit("/", 1)[0] + f"/{redis_db}")
        srv = servers.start(kind, server_env, self.work, workers=self.args.workers, name=name)
        self.running.append(srv)
        return srv

    def stop(self, srv: servers.Server) -> None:
        srv.stop()
        self.running.remove(srv)

    def bodies(self, name: str, lines: list[tuple[str, str]]) -> Path:
        return load.write_bodies(self.work / f"{name}.lines", lines)

    def wrk(self, srv: servers.Server, path: str, name: str, bodies: Path, seconds: float | None = None,
            connections: int | None = None) -> load.Result:
        start = self.offsets.get(name, 0)
        result = load.run_wrk(srv.url, path, bodies, seconds=seconds or self.args.seconds,
                              connections=connections or self.args.connections, threads=self.args.threads,
                              start=start, workdir=self.work)
        # wrk counts completed requests; up to one per connection was sent and not counted when the
        # run stopped. Skip those too: a code or refresh token is single-use, and replaying one
        # (reuse detection) is not what the next round measures.
        self.offsets[name] = start + result.requests + (connections or self.args.connections) + self.args.threads
        return result

    def warm(self, srv: servers.Server, rs_auth: str) -> None:
        """A fresh server's first requests pay for imports, connections and prepared statements:
        one unmeasured second of the bare view and of introspection of unknown tokens (the query
        path, on tokens no scenario uses)."""
        unknown = [data.credential(self.seed, "at", data.REVOKED, 10**7 + j) for j in range(2000)]
        body = self.bodies("warm", [(rs_auth, "token=" + token) for token in unknown])
        self.wrk(srv, BARE_PATH, "warm-bare", body, seconds=1)
        self.wrk(srv, "/oauth/introspect", "warm", body, seconds=1)

    @staticmethod
    def phase(report: dict[str, Any], name: str, run: Callable[[], T]) -> T | None:
        """A failed phase is reported (and makes the run exit non-zero) without losing the others."""
        try:
            return run()
        except Exception as exc:  # noqa: BLE001
            progress(f"phase {name} failed: {exc!r}")
            report.setdefault("failures", []).append(f"{name}: {exc!r}")
            return None

    def close(self) -> None:
        for srv in list(self.running):
            srv.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def wait_until_idle(srv: servers.Server, timeout: float = 120) -> None:
    """After an overload (open loop above capacity) let the server drain its accept queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            started = time.monotonic()
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=5)
            conn.request("GET", "/livez", headers={"X-Forwarded-Proto": "https"})
            conn.getresponse().read()
            conn.close()
            if time.monotonic() - started < 0.05:
                return
        except OSError:
            pass
        time.sleep(0.5)
