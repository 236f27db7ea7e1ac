"""Celery task of dynamic registration. The name is referenced by the beat schedule's migration: never rename."""

from __future__ import annotations

from celery import shared_task

from clients.registration.services import registrations_expire_unused


@shared_task(name="registration.expire_unused", acks_late=True, time_limit=300, soft_time_limit=240)
def expire_unused() -> int:
    """Every 15 minutes: delete self-registered clients that never obtained a token (AUTHSERVER_DCR_UNUSED_SECONDS)."""
    return registrations_expire_unused(actor="job:registration.expire_unused")
