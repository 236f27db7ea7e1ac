"""Celery task series, from Celery's task signals (connected by authserver.celery, in the worker).

Lag is how long a message waited: the task's start minus the moment it was sent (the
``sent_at`` header authserver.celery stamps on every message it publishes) or its ETA if later.
Messages without the header (sent by an older release) count runs and failures but no lag.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from authserver.observability import metrics

_started: dict[str, float] = {}


def task_prerun(*, task_id: str, task: Any, **kwargs: Any) -> None:
    now = time.time()
    name = task.name
    metrics.task_runs.labels(name).inc()
    _started[task_id] = time.monotonic()
    lag = lag_seconds(task.request, now)
    if lag is not None:
        metrics.task_lag_seconds.labels(name).observe(lag)


def task_postrun(*, task_id: str, task: Any, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        metrics.task_seconds.labels(task.name).observe(time.monotonic() - started)


def task_failure(*, sender: Any, **kwargs: Any) -> None:
    metrics.task_failures.labels(getattr(sender, "name", "unknown")).inc()


def lag_seconds(request: Any, now: float) -> float | None:
    sent = getattr(request, "sent_at", None)
    if not isinstance(sent, (int, float)):
        return None
    due = float(sent)
    eta = getattr(request, "eta", None)
    if eta:
        try:
            due = max(due, datetime.fromisoformat(eta).timestamp() if isinstance(eta, str) else eta.timestamp())
        except (TypeError, ValueError, AttributeError):
            pass
    return max(0.0, now - due)
