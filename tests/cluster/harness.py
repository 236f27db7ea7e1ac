"""The production topology on one machine, from Debian packages and the project's own command lines.

    clients (127.0.0.x) --TLS--> nginx --HTTP--> granian web node A, web node B
                                                   |  PostgreSQL (a database of our own)
    celery worker 1, worker 2, beat ---------------+  Redis (a redis-server of our own)

Every process gets the same environment: ``AUTHSERVER_ENV=production`` with its required settings,
one ``DATABASE_URL``, one ``REDIS_URL`` and ONE data directory. They must share the data directory:
it holds the key store (the key-encryption key that wraps the data keys the database rows are
encrypted under), the generated admin path and the static files. A node with a key store of its
own could not read what another node wrote; production mounts one volume (or one HSM) for all of
them, and so does this harness.

``manage.py migrate_locked`` runs once before the web nodes, as the container's ``migrate`` role
does; the web nodes run granian with the ``web`` role's flags (docker-entrypoint.sh), one worker
each to fit a 2-core machine. nginx trusts nobody's ``X-Forwarded-For``: it sets the header to
the peer's address, and the web nodes trust 127.0.0.1/32 (``AUTHSERVER_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from requests.adapters import HTTPAdapter

from tests.e2e.server import ROOT, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Small enough for a test to exhaust, on the policy the token endpoint applies to failed client
# authentication per address (counted in Redis, shared by every node).
AUTH_FAILURE_LIMIT = 5
WEB_FLAGS = [  # docker-entrypoint.sh's web role, one worker per node
    "--interface", "wsgi", "--workers", "1", "--blocking-threads", "1", "--backlog", "2048", "--no-ws",
    "--respawn-failed-workers", "--workers-kill-timeout", "8", "--log-level", "warning",
]


class SourceAddressAdapter(HTTPAdapter):
    """Every connection of the session leaves from ``source`` (a 127.0.0.x loopback address)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


class Proc:
    """One process of the cluster, its output in ``<logs>/<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and its children), as a crash would."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None:
            try:  # anything the main process left behind in its group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_until(predicate: Callable[[], Any], what: str, *, timeout: float = 60, interval: float = 0.2,
               procs: list[Proc] = ()) -> Any:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for proc in procs:
            if proc.proc is not None and not proc.alive():
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


class Cluster:
    def __init__(self, base_database_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.data_dir = workdir / "data"
        self.logs.mkdir()
        self.data_dir.mkdir(mode=0o700)
        parts = urlsplit(base_database_url)
        self.db_name = f"authserver_cluster_{os.getpid()}"
        self._admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.database_url = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.redis_port = free_port()
        self.nginx_port = free_port()
        self.node_ports = {"a": free_port(), "b": free_port()}
        self.base_url = f"https://127.0.0.1:{self.nginx_port}"
        self.cert = str(workdir / "tls" / "cert.pem")
        self.procs: dict[str, Proc] = {}
        self.env = self._environment()

    # -- setup -------------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "AUTHSERVER_", "COV_", "COVERAGE"))}
        env.pop("REDIS_URL", None)
        env.update(
            PYTHONUNBUFFERED="1",
            AUTHSERVER_ENV="production",
            AUTHSERVER_SECRET_KEY=secrets.token_urlsafe(64),
            DATABASE_URL=self.database_url,
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            AUTHSERVER_DATA_DIR=str(self.data_dir),
            AUTHSERVER_ISSUER=self.base_url,
            AUTHSERVER_ALLOWED_HOSTS="127.0.0.1,localhost",
            AUTHSERVER_BEHIND_PROXY="1",
            AUTHSERVER_TRUSTED_PROXIES="127.0.0.1/32",
            AUTHSERVER_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            AUTHSERVER_RATE_LIMITS=json.dumps({"token.auth_failure.ip": f"{AUTH_FAILURE_LIMIT}/300"}),
            # The compromise job in small, slow batches so a worker can be killed in the middle of
            # one; an unfinished response counts as stale (for the reconciliation sweep) after 2 s.
            AUTHSERVER_COMPROMISE_BATCH_SIZE="10",
            AUTHSERVER_COMPROMISE_BATCH_PAUSE="0.4",
            AUTHSERVER_COMPROMISE_STALE_SECONDS="2",
        )
        return env

    def start(self) -> None:
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._write_tls()
        self.procs["redis"] = Proc("redis", [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                             "--save", "", "--appendonly", "no"], self.env, self.logs).start()
        wait_until(lambda: "Ready to accept connections" in self.procs["redis"].log(), "redis",
                   procs=[self.procs["redis"]])
        self.manage_raw("migrate_locked", timeout=240)
        self.manage_raw("collectstatic", "--noinput", "--verbosity", "0")
        for node in self.node_ports:
            self.start_web(node)
        for n in (1, 2):
            self.start_worker(n)
        self.start_beat("beat1")
        self._start_nginx()
        wait_until(lambda: self.ready(self.base_url), "/readyz through nginx", procs=list(self.procs.values()))
        for node in self.node_ports:
            wait_until(lambda node=node: self.ready(self.node_url(node)), f"/readyz on node {node}")
        for n in (1, 2):
            wait_until(lambda n=n: "ready." in self.procs[f"worker{n}"].log(), f"worker{n}",
                       procs=[self.procs[f"worker{n}"]])

    def _write_tls(self) -> None:
        from authserver.serve.tls import generate

        cert, key = generate(["127.0.0.1", "localhost"])
        tls = self.workdir / "tls"
        tls.mkdir(mode=0o700)
        (tls / "cert.pem").write_bytes(cert)
        (tls / "key.pem").write_bytes(key)
        (tls / "key.pem").chmod(0o600)

    def start_web(self, node: str) -> Proc:
        argv = [sys.executable, "-m", "granian", *WEB_FLAGS, "--host", "127.0.0.1",
                "--port", str(self.node_ports[node]), "authserver.wsgi:application"]
        self.procs[f"web-{node}"] = proc = Proc(f"web-{node}", argv, self.env, self.logs).start()
        return proc

    def start_worker(self, n: int) -> Proc:
        argv = [sys.executable, "-m", "celery", "-A", "authserver", "worker", "--loglevel", "INFO",
                "--concurrency", "1", "-Q", "celery", "--without-mingle", "--without-gossip",
                "-n", f"worker{n}@cluster"]
        self.procs[f"worker{n}"] = proc = Proc(f"worker{n}", argv, self.env, self.logs).start()
        return proc

    def start_beat(self, name: str) -> Proc:
        argv = [sys.executable, "-m", "celery", "-A", "authserver", "beat", "--loglevel", "INFO",
                "--scheduler", "authserver.beat:LockedDatabaseScheduler",
                "--schedule", str(self.workdir / f"{name}-schedule"), "--pidfile", str(self.workdir / f"{name}.pid")]
        self.procs[name] = proc = Proc(name, argv, self.env, self.logs).start()
        return proc

    def _start_nginx(self) -> None:
        conf = (Path(__file__).parent / "nginx.conf.in").read_text()
        for key, value in {"WORKDIR": str(self.workdir), "PORT": str(self.nginx_port),
                           "NODE_A": str(self.node_ports["a"]), "NODE_B": str(self.node_ports["b"])}.items():
            conf = conf.replace(f"@{key}@", value)
        (self.workdir / "nginx-tmp").mkdir()
        (self.workdir / "nginx.conf").write_text(conf)
        self.procs["nginx"] = Proc("nginx", [NGINX, "-e", str(self.logs / "nginx-error.log"),
                                             "-c", str(self.workdir / "nginx.conf")], self.env, self.logs).start()

    def ready(self, base: str) -> bool:
        try:
            kwargs: dict[str, Any] = {"verify": self.cert} if base.startswith("https") else {}
            return requests.get(f"{base}/readyz", timeout=5, **kwargs).status_code == 200
        except requests.RequestException:
            return False

    # -- use -----------------------------------------------------------------------------------------

    def node_url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.node_ports[node]}"

    def session(self, source: str = "127.0.0.1") -> requests.Session:
        """An HTTPS session to nginx whose connections leave from ``source``."""
        http = requests.Session()
        http.trust_env = False  # no proxy, and no REQUESTS_CA_BUNDLE overriding the cluster's CA
        http.verify = self.cert
        http.mount("https://", SourceAddressAdapter(source))
        return http

    def manage_raw(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}"
        return result.stdout

    def manage(self, *args: str) -> Any:
        """A JSON CLI command against the cluster's database; its JSON output."""
        return json.loads(self.manage_raw(*args))

    def django(self, code: str, **params: Any) -> Any:
        """Run ``code`` inside Django with the cluster's settings; it leaves its answer in ``result``."""
        script = f"import json\nparams = json.loads({json.dumps(json.dumps(params))})\nresult = None\n{code}\n" \
                 "print('\\nRESULT ' + json.dumps(result, default=str))"
        out = self.manage_raw("shell", "-c", script)
        return json.loads(out.rsplit("RESULT ", 1)[1])

    # -- teardown ------------------------------------------------------------------------------------

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()
        try:
            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except psycopg.Error:
            pass

    def log_tails(self, chars: int = 2500) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            parts.append(f"----- {path.name} -----\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)


def set_schedule(cluster: Cluster, *, name: str, task: str, seconds: int) -> None:
    """Create or change the beat schedule ``name`` (a django-celery-beat row, as the admin would)."""
    cluster.django(
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
        "every, _ = IntervalSchedule.objects.get_or_create(every=params['seconds'], period='seconds')\n"
        "PeriodicTask.objects.update_or_create(name=params['name'], task=params['task'],"
        " defaults={'interval': every, 'enabled': True})\n",
        name=name, task=task, seconds=seconds)
