"""Celery tasks for key rotation: thin, idempotent, id-taking."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from authserver.crypto import rotation, trail

COMMON: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,  # idempotent: a run lost with its worker is redelivered
    "autoretry_for": (OperationalError,),
    "max_retries": 3,
    "retry_backoff": True,
}


@shared_task(name="crypto.rotation_run", time_limit=3600, soft_time_limit=3500, **COMMON)
def rotation_run(rotation_id: str) -> dict[str, Any]:
    return rotation_finished(rotation_id, actor="job:crypto.rotation_run")


def rotation_finished(rotation_id: str, *, actor: str) -> dict[str, Any]:
    """Run (or resume) a rotation to its end; one ``keystore.rotation_finished`` event for the run
    that finished it (a rerun of a finished rotation changes nothing and records nothing)."""
    from authserver.crypto.models import Rotation, RotationStatus

    already_done = Rotation.objects.filter(pk=rotation_id, status=RotationStatus.DONE).exists()
    counts = rotation.run(rotation_id)
    if not already_done:
        target = Rotation.objects.values_list("target_version", flat=True).get(pk=rotation_id)
        trail.record(event="keystore.rotation_finished", actor=actor, subject=f"kek:{target}",
                     details={"rotation": rotation_id, "version": target, "counts": counts})
    return counts


@shared_task(name="crypto.reconcile", time_limit=120, soft_time_limit=100, **COMMON)
def reconcile() -> int:
    """Re-enqueue rotation runs whose worker died (no heartbeat for CRYPTO_ROTATION_STALE_SECONDS)."""
    stalled = rotation.stalled()
    for rotation_id in stalled:
        rotation_run.delay(rotation_id)
    return len(stalled)
