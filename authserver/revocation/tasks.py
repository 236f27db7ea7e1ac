"""Celery task: the revocation events' retention (authserver.revocation.feed.prune)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from authserver.revocation import feed


@shared_task(
    name="authserver.revocation.prune_events",
    acks_late=True,
    time_limit=600,
    soft_time_limit=540,
    autoretry_for=(OperationalError,),
    max_retries=3,
    retry_backoff=True,
)
def prune_events() -> int:
    return feed.prune()
