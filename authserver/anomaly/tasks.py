"""Celery task for the anomaly job (a thin wrapper over :mod:`authserver.anomaly.jobs`)."""

from __future__ import annotations

from celery import shared_task

from authserver.anomaly import jobs
from keys.tasks import COMMON


@shared_task(name="anomaly.traffic_minute", time_limit=120, soft_time_limit=100, **COMMON)
def traffic_minute() -> dict[str, int]:
    return jobs.traffic_minute()
