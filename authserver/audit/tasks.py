"""Celery task of the audit trail: the sealer, run by beat every ``AUTHSERVER_AUDIT_SEAL_INTERVAL`` s.

The task name is referenced by the beat schedule (settings.CELERY_BEAT_SCHEDULE): never rename it.
No retry: a run that fails (a row held past the sealer's lock timeout, the database down) leaves
the events unsealed and the next run, seconds later, seals them.
"""

from __future__ import annotations

from celery import shared_task

from authserver.audit.sealer import audit_seal


@shared_task(name="audit.seal", time_limit=120, soft_time_limit=100, ignore_result=True)
def seal() -> int:
    return audit_seal()
