"""Writes on webhook secrets and deliveries, and the contact settings of a client.

Secrets: ``webhook_secret_rotate`` returns ``(secret_row, plaintext)``; the plaintext exists only
there (shown once by the admin or the CLI). Deliveries: ``webhook_send`` records the message and
enqueues its delivery after the caller's commit; it fails open (a notification never blocks
the decision that caused it). The HTTP attempt itself is in ``clients.webhooks.delivery``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.utils import timezone

from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.errors import PolicyViolation
from authserver.jobs import enqueue_on_commit
from clients.models import Client, webhook_url_refusal
from clients.webhooks import signing
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret

log = logging.getLogger("clients.webhooks")
DELIVER_TASK = "webhooks.deliver"


class WebhookError(PolicyViolation):
    """A webhook setting was refused; the message is safe to show."""


def webhook_secret_rotate(*, client: Client, overlap: timedelta | None = None,
                          actor: Any = None) -> tuple[WebhookSecret, str]:
    """A new ``whsec_`` secret for ``client``; the current one keeps signing for ``overlap``.

    The first secret of a client is a rotation from nothing (event ``webhook.secret_created``).
    A secret already retiring keeps its own, earlier end; with no overlap the current one goes now.
    """
    if overlap is None:
        overlap = timedelta(seconds=settings.WEBHOOK_SECRET_OVERLAP_SECONDS)
    if overlap < timedelta(0) or overlap > timedelta(days=30):
        raise WebhookError("overlap must be between 0 and 30 days")
    plaintext = signing.mint_secret()
    now = timezone.now()
    with transaction.atomic():
        Client.objects.select_for_update().filter(pk=client.pk).first()  # one rotation at a time per client
        current = list(WebhookSecret.objects.filter(client=client, retires__isnull=True))
        if overlap:
            WebhookSecret.objects.filter(pk__in=[s.pk for s in current]).update(retires=now + overlap)
        else:
            WebhookSecret.objects.filter(pk__in=[s.pk for s in current]).delete()
        row = WebhookSecret.objects.create(client=client, secret=plaintext, hint=signing.secret_hint(plaintext),
                                           created=now)
        event = "webhook.secret_rotated" if current else "webhook.secret_created"
        audit_record(event=event, actor=actor_label(actor), subject=f"client:{client.client_id}",
                     details={"hint": row.hint, "previous": [s.hint for s in current],
                              "overlap_seconds": int(overlap.total_seconds()) if current else 0})
    log.info("webhook secret issued", extra={"client_id": client.client_id, "hint": row.hint})
    return row, plaintext


def webhook_secrets_drop(*, now: datetime | None = None, actor: Any = "job:webhooks.sweep") -> int:
    """Delete secrets past their overlap (idempotent); one audit event per client affected."""
    now = now or timezone.now()
    with transaction.atomic():
        ended = list(WebhookSecret.objects.filter(retires__lte=now).select_related("client"))
        for row in ended:
            audit_record(event="webhook.secret_dropped", actor=actor_label(actor),
                         subject=f"client:{row.client.client_id}",
                         details={"hint": row.hint, "retired": row.retires.isoformat() if row.retires else None})
        WebhookSecret.objects.filter(pk__in=[row.pk for row in ended]).delete()
    return len(ended)


def client_contact_set(*, client: Client, webhook_url: str | None = None, contact_email: str | None = None,
                       actor: Any = None) -> tuple[Client, str | None]:
    """Change where a client's notifications go. Returns ``(client, new_whsec_or_None)``.

    Setting a webhook URL on a client that has no signing secret creates one: the caller shows it
    once. ``None`` leaves a value unchanged; ``""`` clears it.
    """
    changes: dict[str, Any] = {}
    if webhook_url is not None:
        refusal = webhook_url_refusal(webhook_url) if webhook_url else None
        if refusal:
            raise ValidationError({"webhook_url": [refusal]})
        changes["webhook_url"] = webhook_url
    if contact_email is not None:
        if contact_email:
            try:
                if len(contact_email) > 254:
                    raise ValidationError("at most 254 characters")
                validate_email(contact_email)
            except ValidationError as exc:
                raise ValidationError({"contact_email": exc.messages}) from None
        changes["contact_email"] = contact_email
    secret = None
    with transaction.atomic():
        for name, value in changes.items():
            setattr(client, name, value)
        if changes:
            client.save(update_fields=[*changes, "updated"])
            audit_record(event="client.contact_changed", actor=actor_label(actor), subject=f"client:{client.client_id}",
                         details={"fields": sorted(changes)}, personal=changes)
        secret = webhook_secret_ensure(client=client, actor=actor)
    return client, secret


def webhook_secret_ensure(*, client: Client, actor: Any = None) -> str | None:
    """A client with a webhook URL and no signing secret gets one (returned, to be shown once)."""
    if not client.webhook_url or WebhookSecret.objects.filter(client=client, retires__isnull=True).exists():
        return None
    return webhook_secret_rotate(client=client, overlap=timedelta(0), actor=actor)[1]


def webhook_send(*, client: Client, event_type: str, data: dict[str, Any],
                 at: datetime | None = None) -> WebhookDelivery | None:
    """Record a message for the client's endpoint and deliver it after commit (fails open).

    The body is the envelope the specification recommends: ``{"type", "timestamp", "data"}``.
    """
    if not client.webhook_url:
        return None
    payload = {"type": event_type, "timestamp": (at or timezone.now()).astimezone(UTC).isoformat(), "data": data}
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                msg_id=f"msg_{uuid.uuid4().hex}", client=client, event_type=event_type, payload=payload,
                next_attempt=timezone.now(), url=client.webhook_url[:500])
    except DatabaseError:
        log.warning("webhook not recorded", extra={"client_id": client.client_id, "type": event_type})
        return None
    enqueue_on_commit(DELIVER_TASK, str(delivery.pk))
    return delivery


def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: Any = None) -> WebhookDelivery:
    """"Retry now": a failed or waiting delivery is attempted again at once (attempts go on counting)."""
    with transaction.atomic():
        if delivery.status == DeliveryStatus.DELIVERED:
            raise WebhookError("already delivered")
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt = timezone.now()
        delivery.save(update_fields=["status", "next_attempt"])
        audit_record(event="webhook.delivery_retried", actor=actor_label(actor),
                     subject=f"client:{delivery.client.client_id}",
                     details={"msg_id": delivery.msg_id, "type": delivery.event_type, "attempts": delivery.attempts})
        enqueue_on_commit(DELIVER_TASK, str(delivery.pk))
    return delivery
