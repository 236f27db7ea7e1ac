"""Wrapped data keys and rotation runs. Nothing here is usable without the key store."""

from __future__ import annotations

import uuid

from django.db import models


class DataKey(models.Model):
    """A data key (or a held secret), wrapped by one KEK version; never stored in clear.

    Purposes starting with ``secret:`` are secrets the server holds (e.g. the webhook signing
    key): rotation re-wraps the same bytes. Every other purpose is an AES-256-GCM data key:
    rotation creates a fresh one under the new KEK and re-encrypts the data.
    """

    purpose = models.CharField(max_length=100)
    kek_version = models.PositiveIntegerField()
    wrapped = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["purpose", "kek_version"], name="crypto_datakey_unique")]

    def __str__(self) -> str:
        return f"{self.purpose} (KEK v{self.kek_version})"


class RotationStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class Rotation(models.Model):
    """One ``keys rotate``: the resumable job re-wraps secrets and re-encrypts rows to ``target_version``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RotationStatus.choices, default=RotationStatus.PENDING)
    counts = models.JSONField(default=dict)
    requested = models.DateTimeField(auto_now_add=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested"]

    def __str__(self) -> str:
        return f"rotation to KEK v{self.target_version} ({self.status})"
