"""The sealer running continuously: a real worker and beat seal an appended event within seconds.

Embedded pass: SQLite and the filesystem broker; production pass: PostgreSQL and Redis (as
tests/jobs). Beat writes the "audit.seal" entry from settings.CELERY_BEAT_SCHEDULE, every
``AUTHSERVER_AUDIT_SEAL_INTERVAL`` seconds, and "audit.checkpoint" every
``AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL`` seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from authserver.audit.checkpoints import checkpoint_path
from authserver.audit.models import AuditEvent
from authserver.audit.selectors import audit_verify
from authserver.audit.services import audit_record
from authserver.crypto import envelope
from tests.jobs.conftest import ROOT, WorkerProcess, _database_url

SEAL_INTERVAL = 1
CHECKPOINT_INTERVAL = 2
SEALED_WITHIN = 5.0


@pytest.fixture
def worker_and_beat(transactional_db: Any, tmp_path: Path) -> Iterator[Path]:
    # Keys this process unwrapped in earlier tests may be gone with their rolled-back rows: the
    # worker must find in the database every key this test encrypts under.
    envelope.reset_caches()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(AUTHSERVER_TESTING="1", AUTHSERVER_DATA_DIR=str(settings.DATA_DIR), DATABASE_URL=_database_url(),
               AUTHSERVER_CELERY_EAGER="0", PYTHONUNBUFFERED="1",
               AUTHSERVER_AUDIT_SEAL_INTERVAL=str(SEAL_INTERVAL),
               AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL=str(CHECKPOINT_INTERVAL),
               AUTHSERVER_AUDIT_CHECKPOINT_PATH=str(checkpoint_path()))
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    beat_log = tmp_path / "beat.log"
    with open(beat_log, "ab") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "authserver", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp_path / "beat-schedule"), "--pidfile", str(tmp_path / "beat.pid")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield beat_log
    finally:
        beat.terminate()
        try:
            beat.wait(timeout=15)
        except subprocess.TimeoutExpired:
            beat.kill()
            beat.wait(timeout=10)
        worker.stop()


def _logs(beat_log: Path) -> str:
    return "\n".join(f"--- {path.name}\n" + path.read_text(errors="replace")[-4000:]
                     for path in (beat_log, beat_log.with_name("worker.log")))


def _sealed_after(event: AuditEvent, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if AuditEvent.objects.filter(pk=event.pk, seq__isnull=False).exists():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def test_a_running_worker_and_beat_seal_new_events_within_seconds(worker_and_beat):
    warm_up = audit_record(event="test.warm_up")
    assert _sealed_after(warm_up, 90) is not None, _logs(worker_and_beat)

    delays = []
    for n in range(3):
        event = audit_record(event="test.live", subject=f"n:{n}", personal={"ip": "192.0.2.9"})
        delay = _sealed_after(event, 30)
        assert delay is not None and delay < SEALED_WITHIN, (delays, delay, _logs(worker_and_beat))
        delays.append(delay)
    report = audit_verify(max_unsealed_age=SEALED_WITHIN)
    assert report.problems == [] and report.checked == 4

    # Beat's checkpoint entry: signed heads appended every CHECKPOINT_INTERVAL seconds.
    lines = _checkpoints_until(seq=4, timeout=30)
    assert lines, _logs(worker_and_beat)
    times = [datetime.fromisoformat(line["at"]) for line in lines]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps and max(gaps) < CHECKPOINT_INTERVAL + 3, (gaps, _logs(worker_and_beat))
    assert audit_verify().problems == []


def _checkpoints_until(*, seq: int, timeout: float) -> list[dict]:
    """The checkpoint file's lines once one names ``seq`` and one more followed it ([] on timeout)."""
    path = checkpoint_path()
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        covered = [n for n, line in enumerate(lines) if line["seq"] == seq]
        if covered and covered[0] < len(lines) - 1:
            return lines
        time.sleep(0.2)
    return []
