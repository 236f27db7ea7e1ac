"""``manage.py serve`` for real: first run on an empty data directory, HTTPS with the generated
certificate, the worker and beat children, a clean stop on Ctrl-C, and no orphan left behind.

Embedded pass: SQLite and the filesystem broker in a temporary data directory. With
``AUTHSERVER_E2E_DATABASE_URL`` set, serve runs against that database instead (never the one
pytest-django uses) and, if ``REDIS_URL`` is set, against Redis.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.server import fresh_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90
STOP_TIMEOUT = 20
IDLE_SECONDS = 5  # after "Ready.": long enough for beat's first jobs (every 2 s) and the access log


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    if os.environ.get("AUTHSERVER_E2E_DATABASE_URL"):
        env["DATABASE_URL"] = fresh_database(os.environ["AUTHSERVER_E2E_DATABASE_URL"], migrated=False)
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ.get("AUTHSERVER_E2E_REDIS_URL") or (
                os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/3"
            )
    env.update(AUTHSERVER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


@dataclass
class Serve:
    proc: subprocess.Popen[str]
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def wait_for(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            if line == wanted:
                return
        pytest.fail(f"serve did not print {wanted!r} in {timeout} s\n{self.transcript()}")

    def value(self, label: str) -> str:
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        raise AssertionError(f"no {label!r} line in:\n{self.transcript()}")

    def children(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in (item.split("=") for item in self.value("children:").split())}

    def transcript(self) -> str:
        return "--- stdout and stderr, as a terminal shows them\n" + "\n".join(self.lines)[-8000:]


def _start(data_dir: Path, *args: str) -> Serve:
    # One pipe for both, in the order written: what a user sees in the terminal.
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", *args],
        cwd=ROOT,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    serve = Serve(proc=proc, data_dir=data_dir)

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            serve.lines.append(line)
            serve._queue.put(line)
        serve._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return serve


def _state(pid: int) -> str | None:
    """The /proc state letter of a live process, None if it is gone (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state = stat.rsplit(")", 1)[1].split()[0]
    return None if state in {"Z", "X"} else state


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _processes_of(data_dir: Path) -> list[int]:
    """Every live process started with this data directory in its environment (any descendant)."""
    marker = f"AUTHSERVER_DATA_DIR={data_dir}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and _state(int(entry.name)):
            found.append(int(entry.name))
    return found


def _assert_all_gone(serve: Serve, pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    left: list[int] = []
    while time.monotonic() < deadline:
        left = sorted(set(_processes_of(serve.data_dir)) | {p for p in pids if _state(p)})
        if not left:
            return
        time.sleep(0.2)
    pytest.fail(f"processes left behind: {[(p, _cmdline(p)) for p in left]}\n{serve.transcript()}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    # Whatever happened in the test, leave nothing running.
    for pid in _processes_of(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
def test_serve_first_run_https_and_clean_stop(data_dir: Path) -> None:
    port = _free_port()
    serve = _start(data_dir, "--bind", f"127.0.0.1:{port}")
    serve.wait_for("Ready.", READY_TIMEOUT)

    # The summary is the last thing on the screen (issue 14): once the server is idle nothing
    # follows "Ready.", and the block before it is serve's own (no Celery banner, no log line).
    time.sleep(IDLE_SECONDS)
    ready_at = serve.lines.index("Ready.")
    assert serve.lines[ready_at + 1 :] == [], serve.transcript()
    blank = max(i for i, line in enumerate(serve.lines[:ready_at]) if line == "")
    summary = serve.lines[blank + 1 : ready_at + 1]
    assert [line.split(":")[0] for line in summary if not line.startswith(" ")] == [
        "Server", "Admin", "API", 'Created superuser "admin" with password', "Data", "Certificate", "children", "Ready."
    ], serve.transcript()  # fmt: skip
    assert serve.value("Data:") == str(data_dir)
    assert not any("[tasks]" in line or "celery beat v" in line for line in serve.lines), serve.transcript()

    # First run on an empty database (a fresh one in the production pass too): a superuser with a
    # one-time password, shown once, in the summary.
    assert sum('Created superuser "admin" with password:' in line for line in serve.lines) == 1
    issuer = serve.value("Server:")
    assert issuer == f"https://127.0.0.1:{port}"
    cert = Path(serve.value("Certificate:"))
    assert cert == data_dir / "tls" / "cert.pem"
    assert (data_dir / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600

    # HTTPS verified against the generated certificate, used as its own CA bundle.
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", verify=str(cert), timeout=10)
    assert metadata.status_code == 200, metadata.text
    assert metadata.json()["issuer"] == issuer
    assert metadata.json()["token_endpoint"] == f"{issuer}/oauth/token"
    health = requests.get(f"{issuer}/healthz", verify=str(cert), timeout=10)
    assert health.status_code == 200, health.text

    api_url = serve.value("API:")  # the management API's random path (issue 15, C4)
    assert api_url.startswith(f"{issuer}/") and api_url.endswith("/") and "api/v1" not in api_url
    schema = requests.get(f"{api_url}schema", verify=str(cert), timeout=10)
    assert schema.status_code == 200 and api_url.removeprefix(issuer) in schema.text

    admin_url = serve.value("Admin:")
    assert admin_url.startswith(f"{issuer}/admin") and admin_url.endswith("/")
    admin = requests.get(admin_url, verify=str(cert), timeout=10, allow_redirects=False)
    assert admin.status_code in {200, 302}, admin.status_code
    if admin.status_code == 302:
        assert "login" in admin.headers["Location"]

    children = serve.children()
    assert set(children) == {"web", "worker", "beat"}
    for name, needle in {"web": "granian", "worker": " worker ", "beat": " beat "}.items():
        assert _state(children[name]), f"{name} is not running\n{serve.transcript()}"
        assert needle in _cmdline(children[name])
    descendants = _processes_of(data_dir)
    assert len(descendants) >= 5, descendants  # + 2 granian workers and the Celery pool process

    serve.proc.send_signal(signal.SIGINT)
    try:
        returncode = serve.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        serve.proc.kill()
        pytest.fail(f"serve did not stop within {STOP_TIMEOUT} s of SIGINT\n{serve.transcript()}")
    assert returncode == 0, serve.transcript()
    _assert_all_gone(serve, [*children.values(), *descendants])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")
def test_serve_stops_everything_when_a_child_dies(data_dir: Path) -> None:
    """Plain HTTP behind a proxy; when the web server dies, serve stops the worker and exits non-zero."""
    port = _free_port()
    serve = _start(data_dir, "--bind", f"127.0.0.1:{port}", "--no-tls", "--no-beat", "--workers", "1")
    serve.wait_for("Ready.", READY_TIMEOUT)

    issuer = serve.value("Server:")
    assert issuer == f"http://127.0.0.1:{port}"
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10)
    assert metadata.status_code == 200, metadata.text
    assert metadata.json()["issuer"] == issuer
    children = serve.children()
    assert set(children) == {"web", "worker"}
    descendants = _processes_of(data_dir)

    os.kill(children["web"], signal.SIGKILL)
    try:
        returncode = serve.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        serve.proc.kill()
        pytest.fail(f"serve did not stop within {STOP_TIMEOUT} s of losing the web server\n{serve.transcript()}")
    assert returncode != 0
    assert "web (pid" in serve.transcript()
    _assert_all_gone(serve, [*children.values(), *descendants])
