"""Celery tasks of the audit trail, run by beat: the sealer every ``AUTHSERVER_AUDIT_SEAL_INTERVAL`` s
and the checkpoint every ``AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL`` s.

The task names are referenced by the beat schedule (settings.CELERY_BEAT_SCHEDULE): never rename them.
No retry: a run that fails (a row held past the sealer's lock timeout, the database down) leaves
the events unsealed and the next run, seconds later, seals them; a checkpoint that fails is
replaced by the next one. A checkpoint refused because the trail was rewound (TrailRewound)
fails every run, on purpose, until an operator records a restore point.
"""

from __future__ import annotations

from celery import shared_task

from authserver.audit.checkpoints import audit_checkpoint
from authserver.audit.sealer import audit_seal


@shared_task(name="audit.seal", time_limit=120, soft_time_limit=100, ignore_result=True)
def seal() -> int:
    return audit_seal()


@shared_task(name="audit.checkpoint", time_limit=60, soft_time_limit=50, ignore_result=True)
def checkpoint() -> int:
    return audit_checkpoint().seq
