"""What the process starters do: the multi-process directory emptied, the servers' JSON logging."""

from __future__ import annotations

import json
import logging.config

from authserver.logging import JsonFormatter, RedactCredentialsFilter
from authserver.serve import supervisor


def test_the_metrics_directory_is_emptied_of_metric_files_only(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"x")
    (directory / "histogram_123.db").write_bytes(b"x")
    (directory / "notes.txt").write_text("kept")
    assert supervisor.reset_metrics_dir(directory) == directory
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


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
