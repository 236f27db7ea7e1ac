"""Celery tasks for webhooks. The names are referenced by the beat schedule's migration: never rename."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError

from clients.webhooks import delivery, services
from clients.webhooks.models import DeliveryStatus

log = logging.getLogger("clients.webhooks")
COMMON: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (OperationalError,),
                          "max_retries": 3, "retry_backoff": True}


@shared_task(name="webhooks.deliver", time_limit=120, soft_time_limit=90, **COMMON)
def deliver(delivery_id: str) -> str | None:
    """One attempt; a failure schedules the next one at its back-off time (the sweep is the safety net)."""
    attempted = delivery.delivery_attempt(delivery_id=delivery_id)
    if attempted is None:
        return None
    if attempted.status == DeliveryStatus.PENDING and attempted.next_attempt is not None:
        try:
            deliver.apply_async(args=[delivery_id], eta=attempted.next_attempt, retry=False)
        except Exception:  # noqa: BLE001 - the sweep enqueues it when due
            log.warning("broker unavailable; webhook retry left for the sweep", extra={"msg_id": attempted.msg_id})
    return str(attempted.status)


@shared_task(name="webhooks.sweep", time_limit=120, soft_time_limit=100, **COMMON)
def sweep() -> dict[str, int]:
    """Every minute: enqueue due deliveries (lost enqueues, retries) and drop secrets past their overlap."""
    due = delivery.deliveries_due()
    for delivery_id in due:
        deliver.delay(delivery_id)
    return {"enqueued": len(due), "secrets_dropped": services.webhook_secrets_drop(actor="job:webhooks.sweep")}
