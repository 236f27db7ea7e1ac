"""Celery tasks for API keys and client secrets: thin, idempotent, bounded, id-taking.

Each calls a service with the actor ``job:<task name>`` (the audit trail says which job acted).
The task names are referenced by the beat schedule's migrations: never rename them.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from clients.services import retired_secrets_purge
from keys import jobs, services

COMMON: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,  # idempotent: a task lost with its worker is redelivered
    "autoretry_for": (OperationalError,),
    "max_retries": 3,
    "retry_backoff": True,
}


@shared_task(name="keys.grace_periods_end", time_limit=300, soft_time_limit=270, **COMMON)
def grace_periods_end() -> dict[str, int]:
    return {"api_keys_revoked": services.api_keys_grace_end(actor="job:keys.grace_periods_end"),
            "client_secrets_retired": retired_secrets_purge()}


@shared_task(name="keys.expire", time_limit=300, soft_time_limit=270, **COMMON)
def keys_expire() -> int:
    return services.api_keys_expire(actor="job:keys.expire")


@shared_task(name="keys.expiry_warnings", time_limit=600, soft_time_limit=570, **COMMON)
def expiry_warnings() -> int:
    return jobs.expiry_warnings_send(actor="job:keys.expiry_warnings")


@shared_task(name="keys.usage_roll_up", time_limit=300, soft_time_limit=270, **COMMON)
def usage_roll_up() -> dict[str, int]:
    return jobs.usage_roll_up()


@shared_task(name="keys.compromise_response_finish", time_limit=3600, soft_time_limit=3500, **COMMON)
def compromise_response_finish(response_id: str) -> dict[str, int]:
    return services.compromise_response_finish(response_id=response_id, actor="job:keys.compromise_response_finish")


@shared_task(name="keys.reconcile", time_limit=120, soft_time_limit=100, **COMMON)
def reconcile() -> int:
    """Re-enqueue unfinished work whose worker died or whose enqueue was lost (broker down)."""
    stalled = jobs.compromise_responses_stalled(stale_after=int(settings.COMPROMISE_STALE_SECONDS))
    for response_id in stalled:
        compromise_response_finish.delay(response_id)
    return len(stalled)
