"""The API-key jobs' side effects: webhooks (clients.webhooks), expiry e-mails, the usage roll-up.

The state changes the jobs make (grace ends, expiries, finishing a compromise response, the
"owner warned" mark) are services in keys.services, audited like every other change; the Celery
tasks in keys/tasks.py call those directly. Nothing here decides security on its own.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from authserver.counters import Batch
from authserver.crypto import Ciphertext, EncryptedTextField
from clients.webhooks.services import webhook_send
from keys import services
from keys.models import ApiKey, ApiKeyStatus, ApiKeyUsage, CompromiseResponse, CompromiseResponseStatus, UsageBatch
from keys.usage import usage_pending, usage_settle, usage_stage

log = logging.getLogger("authserver.keys.jobs")
BATCH = 500
# Recorded batch ids are kept this long: far longer than any batch can stay pending (a pending
# batch is settled by the next run that reaches the store, every minute).
USAGE_BATCHES_KEPT = timedelta(days=30)


def expiry_warnings_send(*, now: datetime | None = None, actor: Any = "job:keys.expiry_warnings") -> int:
    """Warn each owner once, ahead of expiry, by webhook and e-mail (side effects: fail open)."""
    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.API_KEY_EXPIRY_WARNING_SECONDS)
    warned = 0
    candidates = ApiKey.objects.select_related("client").filter(
        status=ApiKeyStatus.ACTIVE,
        expiry_warned__isnull=True,
        expires__gt=now,
        expires__lte=horizon,
        grace_ends__isnull=True,
    )[:BATCH]
    for key in candidates:
        client = key.client
        data = {
            "key_id": str(key.id),
            "key_hint": key.hint,
            "name": key.name,
            "client_id": client.client_id,
            "expires": key.expires.astimezone(UTC).isoformat(),
        }
        webhook_send(client=client, event_type="api_key.expiring", data=data, at=now)
        if client.contact_email:
            try:
                send_mail(
                    subject=f"API key {key.name!r} expires on {key.expires:%Y-%m-%d %H:%M} UTC",
                    message=(
                        f"The API key {key.name} ({key.hint}) of {client.name} expires at "
                        f"{key.expires:%Y-%m-%d %H:%M} UTC. Rotate it before then to avoid an outage."
                    ),
                    from_email=None,
                    recipient_list=[client.contact_email],
                    fail_silently=False,
                )
            except Exception:  # noqa: BLE001 - a side effect: log, the webhook may still have gone out
                log.warning("expiry e-mail failed", extra={"key_id": str(key.id)})
        channels = [name for name, target in (("webhook", client.webhook_url), ("email", client.contact_email))
                    if target]
        if services.api_key_expiry_warned(key=key, at=now, channels=channels, actor=actor):
            warned += 1
    return warned


def usage_roll_up() -> dict[str, int]:
    """Move counted usage into hourly rows and last-used fields, each use exactly once.

    Counts leave the counter store in three steps, and a crash (or the database or the store
    going away) between any two leaves nothing lost or doubled: stage (the store atomically moves
    the live counts into a pending batch with an id), record (one database transaction writes the
    batch and its id; a batch whose id is already recorded is skipped), settle (the store forgets
    the batch). Every run first finishes the batches an earlier run left pending.
    """
    usage_stage()
    keys: set[str] = set()
    requests = 0
    for batch_id, batch in usage_pending().items():
        counted = _usage_batch_record(batch_id, batch)
        usage_settle(batch_id)
        keys |= {key_id for key_id, _ in counted}
        requests += sum(counted.values())
    UsageBatch.objects.filter(applied__lt=timezone.now() - USAGE_BATCHES_KEPT).delete()
    return {"keys": len(keys), "requests": requests}


def _usage_batch_record(batch_id: str, batch: Batch) -> dict[tuple[str, int], int]:
    """Write one pending batch and its id in one transaction; what it counted (nothing if recorded before)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                UsageBatch.objects.create(id=batch_id)
        except IntegrityError:
            return {}  # recorded by a run that crashed before it could settle the batch
        wanted = {key_id for key_id, _ in batch.counts} | set(batch.latest)
        known = {str(pk) for pk in ApiKey.objects.filter(pk__in=wanted).values_list("pk", flat=True)}
        counted = {k: n for k, n in batch.counts.items() if k[0] in known}  # keys deleted since are dropped
        for (key_id, hour), count in counted.items():
            bucket = datetime.fromtimestamp(hour, UTC)
            row, created = ApiKeyUsage.objects.get_or_create(key_id=key_id, hour=bucket, defaults={"requests": count})
            if not created:
                ApiKeyUsage.objects.filter(pk=row.pk).update(requests=F("requests") + count)
            ApiKey.objects.filter(pk=key_id).update(uses=F("uses") + count)
        for key_id, (ts, ip) in batch.latest.items():
            if key_id in known:
                used = datetime.fromtimestamp(ts, UTC)
                # Batches may be recorded out of order (an older one left pending): never go back.
                ApiKey.objects.filter(Q(last_used__isnull=True) | Q(last_used__lt=used), pk=key_id).update(
                    last_used=used, last_used_ip=_sealed_address(key_id, ip))
    return counted


def _sealed_address(key_id: str, ip: str | None) -> Ciphertext | None:
    """The caller's address as stored: encrypted and bound to the key's row (personal data; an
    update() cannot encrypt it for us, so the ciphertext is made here for that row)."""
    if not ip:
        return None
    field = ApiKey._meta.get_field("last_used_ip")
    assert isinstance(field, EncryptedTextField)  # noqa: S101 (the model says so)
    return field.encrypt_value(uuid.UUID(key_id), ip)


def compromise_responses_stalled(*, stale_after: int = 60) -> list[str]:
    """Responses not finished whose worker went quiet: the reconciliation sweep re-enqueues them."""
    threshold = timezone.now() - timedelta(seconds=stale_after)
    pending = CompromiseResponse.objects.exclude(status=CompromiseResponseStatus.DONE)
    stalled = pending.filter(heartbeat__lte=threshold) | pending.filter(
        heartbeat__isnull=True, requested__lte=threshold
    )
    return [str(pk) for pk in stalled.values_list("pk", flat=True)]
