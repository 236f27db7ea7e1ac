"""What the process starters do: the multi-process directory emptied, the servers' JSON logging."""

from __future__ import annotations

import json
import logging.config

from authserver.logging import JsonFormatter, RedactCredentialsFilter
from authserver.serve import supervisor


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has it (until the kernel hands it out again)


def test_the_metrics_directory_is_emptied_of_dead_processes_metric_files_only(tmp_path):
    import os

    directory = tmp_path / "metrics"
    directory.mkdir()
    dead, live = _dead_pid(), os.getpid()
    (directory / f"counter_{dead}.db").write_bytes(b"x")
    (directory / f"histogram_{dead}.db").write_bytes(b"x")
    (directory / f"counter_{live}.db").write_bytes(b"x")  # a live process still counting here
    (directory / "notes.txt").write_text("kept")
    assert supervisor.reset_metrics_dir(directory) == directory
    assert sorted(p.name for p in directory.iterdir()) == [f"counter_{live}.db", "notes.txt"]


def test_the_metrics_directory_is_created_owner_only(tmp_path):
    directory = supervisor.reset_metrics_dir(tmp_path / "new" / "metrics")
    assert directory.is_dir() and directory.stat().st_mode & 0o077 == 0


def test_server_logging_is_json_redacted_and_without_access_log(capsys):
    config = json.loads(supervisor.SERVER_LOG_CONFIG.read_text())
    logging.config.dictConfig(config)
    try:
        for name in ("gunicorn.error", "_granian"):
            (handler,) = logging.getLogger(name).handlers
            assert isinstance(handler.formatter, JsonFormatter)
            assert any(isinstance(f, RedactCredentialsFilter) for f in handler.filters)
        for name in ("gunicorn.access", "granian.access"):
            assert all(isinstance(h, logging.NullHandler) for h in logging.getLogger(name).handlers)
            assert logging.getLogger(name).propagate is False
    finally:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
