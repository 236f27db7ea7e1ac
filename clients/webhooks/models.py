"""Per-client webhook signing secrets and the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from authserver.crypto import EncryptedTextField


class WebhookSecret(models.Model):
    """A client's ``whsec_`` signing secret, encrypted at rest (it must be recoverable to sign).

    A client has one current secret (``retires`` empty) and, during a rotation's overlap, the
    previous one with ``retires`` set: it signs next to the new one until then, and the drop job
    deletes it after. Signing checks ``retires`` itself, so a late job never extends an overlap.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                               related_name="webhook_secrets")
    secret = EncryptedTextField()
    hint = models.CharField(max_length=16, editable=False)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    retires: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, db_index=True)

    objects: ClassVar[models.Manager[WebhookSecret]]

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"webhook secret {self.hint}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one client's endpoint, and what became of it (the delivery log)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    msg_id = models.CharField("message id", max_length=64, unique=True)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                               related_name="webhook_deliveries")
    event_type = models.CharField(max_length=100, db_index=True)
    # The envelope sent as the body ({"type", "timestamp", "data"}); callers never put secrets in it.
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, db_index=True)
    url = models.CharField("last URL", max_length=500, blank=True)
    last_status_code: models.PositiveSmallIntegerField[int | None, int | None] = models.PositiveSmallIntegerField(
        "last HTTP status", null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now, db_index=True)
    last_attempt: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True)
    delivered: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True)

    objects: ClassVar[models.Manager[WebhookDelivery]]

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id}"

    def body(self) -> bytes:
        """The exact bytes signed and sent: the same on every attempt."""
        import json

        payload: Any = self.payload
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
