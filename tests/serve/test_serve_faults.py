"""``manage.py serve`` for real, under faults: a worker or beat killed with SIGKILL is restarted
while the web server keeps answering, and a broker folder poisoned with damaged message files
neither stops the worker nor keeps serve from coming up.

Embedded pass: SQLite and the filesystem broker in a temporary data directory. With
``AUTHSERVER_E2E_DATABASE_URL`` set, serve runs against a fresh database next to it and, if
``REDIS_URL`` is set, against Redis (``AUTHSERVER_E2E_REDIS_URL``, or database 3 of ``REDIS_URL``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.server import ADMIN_PASSWORD, ROOT, free_port, fresh_database

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc"),
]

READY_TIMEOUT = 120
TASK = "authserver.oauth.cleanup_expired_credentials"


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    if os.environ.get("AUTHSERVER_E2E_DATABASE_URL"):
        env["DATABASE_URL"] = fresh_database(os.environ["AUTHSERVER_E2E_DATABASE_URL"])
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ.get("AUTHSERVER_E2E_REDIS_URL") or (
                os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/3"
            )
    env.update(AUTHSERVER_DATA_DIR=str(data_dir), AUTHSERVER_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1")
    return env


@dataclass
class Serve:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    base_url: str
    cert: str
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, "".join(self.output[start:]))
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"no {pattern!r} in serve's output within {timeout} s:\n{self.text()[-5000:]}")

    def children(self) -> dict[str, int]:
        line = self.wait_for(r"children: ([^\n]+)\n", 5).group(1)
        return {name: int(pid) for name, pid in (item.split("=") for item in line.split())}

    def send_task(self) -> None:
        """Queue a real job through serve's broker, as the web process or beat would."""
        code = f"from authserver.celery import app; app.send_task({TASK!r})"
        env = {k: v for k, v in self.env.items() if k != "AUTHSERVER_ADMIN_PASSWORD"}
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]

    def livez(self) -> int | None:
        try:
            return requests.get(f"{self.base_url}/livez", verify=self.cert, timeout=2).status_code
        except requests.RequestException:
            return None


def _start(data_dir: Path) -> Serve:
    port = free_port()
    env = _env(data_dir)
    proc = subprocess.Popen(
        # -v 2: the children's own INFO lines too (each task received and succeeded, read below).
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1", "-v", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    serve = Serve(proc, env, f"https://127.0.0.1:{port}", str(data_dir / "tls" / "cert.pem"))

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            serve.output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    serve.wait_for(r"(?m)^Ready\.$", READY_TIMEOUT)
    return serve


@pytest.fixture
def serve_process() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.proc.poll() is None:
            serve.proc.send_signal(signal.SIGINT)
            try:
                serve.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.proc.pid, signal.SIGKILL)
                serve.proc.wait(timeout=10)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class LivenessWatch:
    """Polls /livez in a thread; every answer that is not 200 is kept."""

    def __init__(self, serve: Serve) -> None:
        self.serve, self.failures, self.answers = serve, list[tuple[float, int | None]](), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            status = self.serve.livez()
            self.answers += 1
            if status != 200:
                self.failures.append((time.monotonic(), status))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _task_succeeded_count(serve: Serve) -> int:
    return len(re.findall(rf"Task {re.escape(TASK)}\[[0-9a-f-]+\] succeeded", serve.text()))


def test_a_killed_worker_and_beat_are_restarted_while_web_keeps_answering(
    tmp_path: Path, serve_process: list[Serve]
) -> None:
    serve = _start(tmp_path / "data")
    serve_process.append(serve)
    children = serve.children()
    watch = LivenessWatch(serve)
    try:
        # The worker: killed as the OOM killer would; restarted after 1 s, and it runs jobs again.
        mark = len(serve.output)
        os.kill(children["worker"], signal.SIGKILL)
        serve.wait_for(
            rf"worker \(pid {children['worker']}\) was killed by SIGKILL; restarting it in 1 s", 10, mark
        )
        new_worker = int(serve.wait_for(r"worker restarted \(pid (\d+), restart 1\)", 15, mark).group(1))
        assert new_worker != children["worker"]
        assert " worker " in _cmdline(new_worker)
        ready = Path(serve.env["AUTHSERVER_DATA_DIR"]) / "run" / "worker.ready"
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text().strip() == str(new_worker)):
            assert time.monotonic() < deadline, f"the new worker never became ready\n{serve.text()[-4000:]}"
            time.sleep(0.2)
        before = _task_succeeded_count(serve)
        serve.send_task()
        deadline = time.monotonic() + 60
        while _task_succeeded_count(serve) == before:
            assert time.monotonic() < deadline, f"the restarted worker ran no job\n{serve.text()[-4000:]}"
            time.sleep(0.2)

        # Beat: the same.
        mark = len(serve.output)
        os.kill(children["beat"], signal.SIGKILL)
        serve.wait_for(rf"beat \(pid {children['beat']}\) was killed by SIGKILL; restarting it in 1 s", 10, mark)
        new_beat = int(serve.wait_for(r"beat restarted \(pid (\d+), restart 1\)", 15, mark).group(1))
        assert new_beat != children["beat"]
        time.sleep(3)  # still alive after starting: it did not die on the dead one's leftovers
        assert " beat " in _cmdline(new_beat), serve.text()[-4000:]
    finally:
        watch.stop()

    assert serve.proc.poll() is None, serve.text()[-4000:]
    assert watch.answers > 20
    assert watch.failures == [], f"/livez failed during the restarts: {watch.failures}"
    assert serve.livez() == 200
    assert " granian " in _cmdline(children["web"]) or "granian" in _cmdline(children["web"])


@pytest.mark.skipif(
    bool(os.environ.get("AUTHSERVER_E2E_DATABASE_URL") and os.environ.get("REDIS_URL")),
    reason="the filesystem broker is the embedded pass's; with Redis there are no broker files to poison",
)
def test_serve_comes_up_on_a_poisoned_broker_folder_and_runs_jobs(tmp_path: Path, serve_process: list[Serve]) -> None:
    data_dir = tmp_path / "data"
    broker = data_dir / "broker"
    for folder in ("queue", "control"):
        (broker / folder).mkdir(mode=0o700, parents=True)
    data_dir.chmod(0o700)
    broker.chmod(0o700)
    # What a full disk left behind: zero-byte messages from beat, a garbage one, a torn exchange table.
    damaged = {
        "0000000001_empty.celery.msg": b"",
        "0000000002_garbage.celery.msg": b"\x00\x01 not a message",
        "0000000003_truncated.celery.msg": b'{"body": "eyJ',
    }
    for name, content in damaged.items():
        (broker / "queue" / name).write_bytes(content)
    (broker / "control" / "celery.exchange").write_bytes(b"")

    serve = _start(data_dir)
    serve_process.append(serve)
    children = serve.children()

    serve.send_task()
    deadline = time.monotonic() + 60
    while _task_succeeded_count(serve) == 0:
        assert time.monotonic() < deadline, f"no job ran\n{serve.text()[-4000:]}"
        time.sleep(0.2)

    quarantined = {p.name.rsplit(".", 1)[0] for p in (broker / "bad").iterdir()}
    assert set(damaged) <= quarantined, quarantined
    assert "celery.exchange" in quarantined
    for name in damaged:
        assert f'"file": "{name}"' in serve.text()  # each one logged by name
    # Nothing died on the way: the first worker is still the one serving.
    assert "restarted" not in serve.text()
    assert Path(f"/proc/{children['worker']}").exists()
