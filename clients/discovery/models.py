"""Per-client discovery capability URLs (issue 15, contract C3; docs/endpoints.md).

``/d/<dc_…>`` answers the RFC 8414 document with the current window's endpoint URLs. Knowing the
URL is the permission to read it (a capability URL): so, like every credential, only its SHA-256
digest is stored, and the plaintext is shown once, when it is issued.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class DiscoveryCapability(models.Model):
    """A client's discovery URL: one live (``revoked_at`` empty) at most; rotation revokes the old one."""

    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                               related_name="discovery_capabilities")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    revoked_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[models.Manager[DiscoveryCapability]]

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "discovery URL"

    def __str__(self) -> str:
        return f"discovery URL {self.hint}"
