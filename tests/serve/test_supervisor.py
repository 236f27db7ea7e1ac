"""serve's supervisor with real child processes (small Python scripts): which deaths are fatal,
and how the others are restarted. The same in both passes (no database, no Redis)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from authserver.serve.restart import Backoff
from authserver.serve.supervisor import ChildExited, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_backoff_doubles_to_a_ceiling_and_resets_after_a_stable_run() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.next_delay(61.0) == 1  # it had run a stable minute: a fresh start
    assert backoff.next_delay(3.0) == 2


@pytest.fixture
def supervisor() -> Iterator[tuple[Supervisor, list[str]]]:
    lines: list[str] = []
    sup = Supervisor(log=lines.append, stop_timeout=5)
    yield sup, lines
    sup.stop_all()


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_dead_restartable_child_is_restarted_with_a_log_line(
    supervisor: tuple[Supervisor, list[str]], tmp_path: Path
) -> None:
    sup, lines = supervisor
    starts = tmp_path / "starts"
    web = sup.spawn("web", SLEEPER, os.environ, tmp_path)
    worker = sup.spawn(
        "worker", SLEEPER, os.environ, tmp_path, restart=True,
        before_start=lambda: starts.open("a").write("x"),
    )  # fmt: skip
    first_pid = worker.pid
    os.kill(first_pid, signal.SIGKILL)
    worker.proc.wait()

    sup.check()  # notices, schedules; the web server is untouched
    assert lines == [f"worker (pid {first_pid}) was killed by SIGKILL; restarting it in 1 s"]
    assert worker.restart_at is not None
    _wait(lambda: (sup.check(), worker.restart_at is None)[1], timeout=5)
    assert worker.pid != first_pid and worker.alive() and web.alive()
    assert lines[-1] == f"worker restarted (pid {worker.pid}, restart 1)"
    assert starts.read_text() == "xx"  # before_start ran before each start

    # Dying again soon after: the wait doubles.
    os.kill(worker.pid, signal.SIGKILL)
    worker.proc.wait()
    sup.check()
    assert lines[-1].endswith("restarting it in 2 s")


def test_the_web_servers_death_is_fatal(supervisor: tuple[Supervisor, list[str]], tmp_path: Path) -> None:
    sup, _ = supervisor
    web = sup.spawn("web", SLEEPER, os.environ, tmp_path)
    sup.spawn("worker", SLEEPER, os.environ, tmp_path, restart=True)
    os.kill(web.pid, signal.SIGKILL)
    web.proc.wait()
    with pytest.raises(ChildExited, match=r"^web \(pid \d+\) was killed by SIGKILL$"):
        sup.check()


def test_a_failing_restart_is_retried_later(supervisor: tuple[Supervisor, list[str]], tmp_path: Path) -> None:
    sup, lines = supervisor
    full = [False]

    def before_start() -> None:
        if full[0]:
            raise OSError(28, "No space left on device")

    worker = sup.spawn("worker", SLEEPER, os.environ, tmp_path, restart=True, before_start=before_start)
    full[0] = True
    os.kill(worker.pid, signal.SIGKILL)
    worker.proc.wait()
    sup.check()
    _wait(lambda: (sup.check(), "could not restart" in lines[-1])[1], timeout=5)
    assert lines[-1] == "could not restart worker ([Errno 28] No space left on device); trying again in 2 s"
    full[0] = False
    _wait(lambda: (sup.check(), worker.alive())[1], timeout=5)


def test_a_log_line_lost_to_a_full_disk_does_not_stop_supervision(tmp_path: Path) -> None:
    def full_disk(message: str) -> None:
        raise OSError(28, "No space left on device")

    sup = Supervisor(log=full_disk, stop_timeout=5)
    try:
        worker = sup.spawn("worker", SLEEPER, os.environ, tmp_path, restart=True)
        first = worker.pid
        os.kill(first, signal.SIGKILL)
        worker.proc.wait()
        _wait(lambda: (sup.check(), worker.pid != first and worker.alive())[1], timeout=5)
    finally:
        sup.stop_all()
