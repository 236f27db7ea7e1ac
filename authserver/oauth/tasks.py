"""Celery tasks: thin wrappers over services. Idempotent, bounded, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from authserver.oauth.services import tokens_cleanup


@shared_task(
    name="authserver.oauth.cleanup_expired_credentials",
    acks_late=True,
    reject_on_worker_lost=True,  # a sweep killed midway is redelivered and resumes (idempotent)
    time_limit=900,
    soft_time_limit=840,
    autoretry_for=(OperationalError,),
    max_retries=3,
    retry_backoff=True,
)
def cleanup_expired_credentials() -> dict[str, int]:
    return tokens_cleanup(actor="job:authserver.oauth.cleanup_expired_credentials")
