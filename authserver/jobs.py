"""Enqueueing Celery tasks from a request: after commit, and never failing the request.

A task is only a way to finish what the request already decided and committed. If the broker is
down the request still answers; the reconciliation sweeps (beat) find the unfinished work in the
database and enqueue it again (docs/decisions/0008-fail-closed.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from authserver.celery import app

log = logging.getLogger("authserver.jobs")


def enqueue_on_commit(task: Any, *args: Any) -> None:
    """Enqueue ``task`` (a task, or a registered task's name: how domain code names the tasks of
    the interface layer above it) with ``args`` once the surrounding transaction commits."""
    def send() -> None:
        try:
            target = app.tasks[task] if isinstance(task, str) else task
            target.apply_async(args=args, retry=False)
        except Exception:  # noqa: BLE001 - the sweep will catch up; the decision is committed
            log.warning("broker unavailable; task left for the reconciliation sweep",
                        extra={"task": task if isinstance(task, str) else task.name})

    transaction.on_commit(send)
