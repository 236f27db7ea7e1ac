"""Enqueueing Celery tasks from a request: after commit, and never failing the request.

A task is only a way to finish what the request already decided and committed. If the broker is
down the request still answers; the reconciliation sweeps (beat) find the unfinished work in the
database and enqueue it again (docs/decisions/0008-fail-closed.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

log = logging.getLogger("authserver.jobs")


def enqueue_on_commit(task: Any, *args: Any) -> None:
    def send() -> None:
        try:
            task.apply_async(args=args, retry=False)
        except Exception:  # noqa: BLE001 - the sweep will catch up; the decision is committed
            log.warning("broker unavailable; task left for the reconciliation sweep", extra={"task": task.name})

    transaction.on_commit(send)
