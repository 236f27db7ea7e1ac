"""Start, watch and stop the child processes of ``manage.py serve``.

Each child runs in its own session (hence its own process group), so a Ctrl-C at the terminal
reaches only ``serve``, which then stops every child: SIGTERM to each child (gunicorn's master and
Celery's main process stop their own workers), up to ``stop_timeout`` seconds to exit, then SIGKILL
to the child's whole process group, so that no worker or pool process is left behind. On Linux
each child also asks the kernel for SIGTERM should ``serve`` itself die (even by SIGKILL), so no
child outlives it.

A child that exits on its own: the web server's exit is fatal (``serve`` stops the rest and exits
non-zero, for systemd or the container runtime to restart the whole; granian itself replaces a
dead worker process of its own). The Celery worker and beat are restarted with back-off
(:mod:`authserver.serve.restart`) while the web server keeps answering: jobs are deferred work
that the reconciliation sweeps catch up on, never a reason to stop serving. Each death and each
restart is one line on serve's stderr naming the child, its pid and when it starts again.

Before the first child starts, ``serve`` empties prometheus-client's multi-process directory
(:func:`reset_metrics_dir`): every child writes its metrics there, and files of an earlier run
would be added to this one's. The web server logs in the application's JSON format
(:data:`SERVER_LOG_CONFIG`, shared with the container's granian); its own access log stays off in
favour of the application's access line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from authserver.serve.restart import Backoff

# The servers' logging (gunicorn ``--log-config-json``, granian ``--log-config``): JSON lines through
# the application's formatter and redaction; the servers' access loggers are silenced.
SERVER_LOG_CONFIG = Path(__file__).with_name("server_logging.json")

STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.2
FORCE_AFTER = 1.0


class StopRequested(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ChildExited(Exception):
    def __init__(self, name: str, pid: int, returncode: int) -> None:
        how = (
            f"was killed by {signal.Signals(-returncode).name}"
            if returncode < 0
            else f"exited with status {returncode}"
        )
        super().__init__(f"{name} (pid {pid}) {how}")
        self.name = name
        self.returncode = returncode


class NotReady(Exception):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    backoff: Backoff | None = None  # None: not restarted, its exit is fatal
    before_start: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] = field(init=False)
    started_at: float = 0.0
    restart_at: float | None = None  # set while waiting to be started again
    restarts: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook making the kernel send SIGTERM to the child when serve dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # serve died before prctl took effect
            os._exit(1)

    return hook


class Supervisor:
    def __init__(self, log: Callable[[str], None], stop_timeout: float = STOP_TIMEOUT) -> None:
        self.log = log
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self._stopping = False
        self._force = False
        self._first_signal_at = 0.0

    # --- signals ------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self.stop_signal is None:
            self.stop_signal = signum
            self._first_signal_at = now
        elif self._stopping and now - self._first_signal_at > FORCE_AFTER:
            # A second Ctrl-C while stopping: do not wait any longer. Only a deliberate one: a
            # terminal's Ctrl-C reaches serve twice under `uv run` (directly, and forwarded by uv).
            self._force = True

    # --- children -----------------------------------------------------------------------------
    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        *,
        restart: bool = False,
        before_start: Callable[[], None] | None = None,
    ) -> Child:
        """Start a child; with ``restart``, start it again (after ``before_start``) whenever it dies."""
        child = Child(
            name, list(argv), dict(env), cwd, backoff=Backoff() if restart else None, before_start=before_start
        )
        self._start(child)
        self.children.append(child)
        return child

    def _start(self, child: Child) -> None:
        if child.before_start is not None:
            child.before_start()
        child.proc = subprocess.Popen(  # noqa: S603 (argv built by serve from sys.executable and fixed flags)
            child.argv,
            env=child.env,
            cwd=child.cwd,
            stdin=subprocess.DEVNULL,
            # Children log to serve's stderr: serve's stdout carries only its own messages
            # (Celery prints its banners to stdout).
            stdout=2,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),  # noqa: PLW1509 (serve is single-threaded)
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    def check(self) -> None:
        """Raise StopRequested after a signal, ChildExited if a child whose exit is fatal has ended;
        schedule and perform the restarts of the others."""
        if self.stop_signal is not None:
            raise StopRequested(self.stop_signal)
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child, now)
                continue
            returncode = child.proc.poll()
            if returncode is None:
                continue
            exited = ChildExited(child.name, child.pid, returncode)
            if child.backoff is None:
                raise exited
            # Whatever the dead child left in its group (Celery's pool process) goes with it.
            _killpg(child.pid, signal.SIGKILL)
            delay = child.backoff.next_delay(now - child.started_at)
            child.restart_at = now + delay
            self._log(f"{exited}; restarting it in {delay:g} s")

    def _log(self, message: str) -> None:
        try:
            self.log(message)
        except OSError:
            pass  # stderr on a full disk: a lost line must not stop the supervision it reports on

    def _restart(self, child: Child, now: float) -> None:
        assert child.backoff is not None  # noqa: S101 (only restartable children are scheduled)
        try:
            self._start(child)
        except OSError as exc:  # no memory, no file descriptors, a full disk for its files
            delay = child.backoff.next_delay(0.0)
            child.restart_at = now + delay
            self._log(f"could not restart {child.name} ({exc}); trying again in {delay:g} s")
            return
        child.restarts += 1
        self._log(f"{child.name} restarted (pid {child.pid}, restart {child.restarts})")

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            if ready():
                return
            if time.monotonic() > deadline:
                raise NotReady(f"{what} not ready after {timeout:.0f} s")
            time.sleep(POLL_INTERVAL)

    def run(self) -> None:
        """Block until a signal arrives or a child exits (then raise, like check())."""
        while True:
            self.check()
            time.sleep(POLL_INTERVAL)

    def stop_all(self) -> None:
        """SIGTERM every child, wait up to stop_timeout, then SIGKILL whatever is left in their groups."""
        self._stopping = True
        for child in self.children:
            if child.alive():
                # To the child alone: gunicorn's master and Celery's main process stop their own
                # workers in order (signalling the whole group would make Celery replace its
                # pool process mid-shutdown).
                _kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(c.alive() for c in self.children) and time.monotonic() < deadline and not self._force:
            time.sleep(0.1)
        for child in self.children:
            if child.alive():
                self._log(f"{child.name} (pid {child.pid}) did not stop in time; killing it")
                _killpg(child.pid, signal.SIGKILL)
                child.proc.wait()
            # Anything the child left behind in its group (a pool process, a gunicorn worker) goes too.
            _killpg(child.pid, signal.SIGKILL)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg(pgid: int, signum: int) -> None:
    # The group id is the pid of a child we started in its own session; while any member of the
    # group lives, the kernel does not hand that number out again.
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def reset_metrics_dir(path: Path) -> Path:
    """Create prometheus-client's multi-process directory, or empty it of an earlier run's files.

    Only its own files (``<kind>_<pid>.db``) of processes that are gone are removed: a mistyped
    ``PROMETHEUS_MULTIPROC_DIR`` never costs anything else, and a live process sharing the
    directory (a second ``serve`` started by mistake, a test runner whose children inherit the
    variable) keeps counting into files that still exist.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in path.glob("*.db"):
        if entry.is_file() and not entry.is_symlink() and not _alive(_metrics_file_pid(entry.name)):
            entry.unlink(missing_ok=True)
    return path


def _metrics_file_pid(name: str) -> int | None:
    tail = name.removesuffix(".db").rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True
