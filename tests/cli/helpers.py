"""Running the command line in-process (call_command: fast) and as a real process (exit codes,
the front door, start-up)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: Any, *args: str) -> dict[str, Any]:
    """A command that succeeds: exactly one JSON object on stdout, nothing on stderr."""
    call_command(*args)
    captured = capsys.readouterr()
    assert captured.out.endswith("\n") and captured.out.count("\n") == 1, captured.out
    assert captured.err == "", captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


def fail(capsys: Any, *args: str) -> tuple[int, dict[str, Any]]:
    """A command that is refused: exit status and its one JSON line on stderr, nothing on stdout."""
    with pytest.raises(SystemExit) as exited:
        call_command(*args)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return int(exited.value.code or 0), json.loads(lines[0])


def process_env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a real manage.py: the embedded defaults in ``data_dir``, not the test run's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_"))}
    if data_dir is not None:
        env["AUTHSERVER_DATA_DIR"] = str(data_dir)
    return {**env, **extra}


def manage(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python manage.py ARGS`` and the CPU seconds (user + system) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env or process_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
