"""A pending device authorization (RFC 8628 §3.1-§3.5): hash-only, short-lived, redeemed once.

Both codes are stored only as digests (docs/decisions/0002-hash-only-at-rest.md): the device code
is one of our credentials (``dvc_…``, :class:`authserver.oauth.models.HashedCredentialField`); the
user code is digested after normalisation (authserver.oauth.device.user_codes), so a database
reader can neither poll for a token nor approve a device.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from django.conf import settings
from django.db import models

from authserver import credentials
from authserver.oauth.models import HashedCredentialField

PENDING = "pending"
AUTHORIZED = "authorized"
DENIED = "denied"
STATUSES = [(PENDING, "pending"), (AUTHORIZED, "authorized"), (DENIED, "denied")]


class DeviceAuthorization(models.Model):
    device_code = HashedCredentialField(kind=credentials.DEVICE_CODE, unique=True, verbose_name="device code digest")
    hint: models.CharField[str, str] = models.CharField(max_length=16, blank=True, editable=False)
    user_code_digest: models.CharField[str, str] = models.CharField(max_length=64, unique=True, editable=False)
    client: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="device_authorizations")
    scope: models.TextField[str, str] = models.TextField(blank=True)
    resource = models.JSONField(default=list, blank=True)  # RFC 8707 audiences, checked at §3.1 time
    status: models.CharField[str, str] = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    interval: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    expires: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)
    decided: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)
    last_polled: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)
    # Set, atomically and once, by the token request that redeems it (a second one is refused).
    redeemed: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)
    token_family: models.UUIDField[UUID | None, UUID | None] = models.UUIDField(null=True, blank=True, editable=False)

    objects: ClassVar[models.Manager[DeviceAuthorization]]

    class Meta:
        verbose_name = "device authorization"

    def __str__(self) -> str:
        # Never a code: the hint of the device code and when it was made.
        return f"{self.hint or 'device authorization'} created {self.created:%Y-%m-%d %H:%M} UTC"
