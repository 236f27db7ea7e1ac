# ruff: noqa: S108, S603, S607 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Start the WSGI servers the bench measures, as production starts them."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.env import HOST, ROOT, free_port

# The production web role (docker-entrypoint.sh `web`) is granian, chosen on this comparison.
SERVERS = ("gunicorn-sync", "gunicorn-gthread", "granian")
# manage.py serve terminates TLS itself: these two are the candidates for it (--compare only),
# each serving HTTPS with a generated certificate, as serve would run it.
TLS_SERVERS = ("gunicorn-gthread-tls", "granian-tls")


def _tls_files(directory: Path) -> tuple[Path, Path]:
    from authserver.serve.tls import generate

    cert_path, key_path = directory / "bench-cert.pem", directory / "bench-key.pem"
    if not cert_path.exists():
        cert_pem, key_pem = generate([HOST])
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def command(kind: str, app: str, port: int, workers: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    if kind.endswith("-tls"):
        assert tls is not None
        cert, key = (str(path) for path in tls)
        if kind == "granian-tls":
            return [*command("granian", app, port, workers), "--ssl-certificate", cert, "--ssl-keyfile", key]
        # manage.py serve's gunicorn: gthread (4 threads, keep-alive 5 s) with the certificate.
        return [*command("gunicorn-gthread", app, port, workers), "--certfile", cert,
                "--keyfile", key]
    if kind.startswith("gunicorn"):
        cmd = [sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}", "--workers", str(workers),
               "--keep-alive", "5", "--graceful-timeout", "8", "--worker-tmp-dir", "/dev/shm",
               "--backlog", "2048"]
        import gunicorn

        if tuple(gunicorn.version_info[:2]) >= (25, 1):
            cmd.append("--no-control-socket")
        if kind == "gunicorn-sync":
            cmd += ["--worker-class", "sync"]
        else:
            cmd += ["--worker-class", "gthread", "--threads", os.environ.get("BENCH_GTHREADS", "4")]
        return cmd
    if kind == "granian":
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port),
                "--workers", str(workers), "--blocking-threads", os.environ.get("BENCH_GRANIAN_THREADS", "1"),
                "--backlog", "2048", "--no-ws", "--log-level", "warning", app]
    raise ValueError(kind)


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def scheme(self) -> str:
        return "https" if self.kind.endswith("-tls") else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            import ssl

            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the bench's own certificate
            return http.client.HTTPSConnection(HOST, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(x) for x in out.stdout.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start(kind: str, env: dict[str, str], log_dir: Path, *, workers: int = 2, app: str = "authserver.wsgi:application",
          cwd: Path = ROOT, python: str | None = None, name: str | None = None) -> Server:
    port = free_port()
    cmd = command(kind, app, port, workers, _tls_files(log_dir) if kind.endswith("-tls") else None)
    if python:
        cmd[0] = python
    log = log_dir / f"{name or kind}-{port}.log"
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(kind=kind, port=port, proc=proc, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited:\n{log.read_text()[-3000:]}")
        try:
            conn = server.connection(timeout=2)
            conn.request("GET", "/readyz", headers={"X-Forwarded-Proto": "https"})
            status = conn.getresponse().status
            conn.close()
            if status in (200, 404):  # ready (404: vanilla DOT has no probe; it answered)
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        server.stop()
        raise RuntimeError(f"{kind} did not answer:\n{log.read_text()[-3000:]}")
    # Warm every worker (imports, first connection) before anything is measured.
    for _ in range(20 * workers):
        try:
            conn = server.connection(timeout=5)
            conn.request("GET", "/readyz", headers={"X-Forwarded-Proto": "https"})
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
    return server
