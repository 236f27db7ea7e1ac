"""API keys: long-lived credentials with the same policy as an OAuth client.

A key is stored like every other credential (docs/decisions/0002-hash-only-at-rest.md): a SHA-256 digest in a unique
index, plus a display hint. The plaintext exists once, in the response that created it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from authserver.crypto import EncryptedTextField
from keys.usability import api_key_end, api_key_usable_until


class ApiKeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class ApiKey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                               related_name="api_keys")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=24, editable=False)
    scope = models.TextField(blank=True, help_text="Space-separated; a subset of the client's allowed scopes.")
    audiences = models.JSONField(default=list, blank=True)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="IPv4/IPv6 CIDRs; empty allows any.")
    rate_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per rate_limit_period.")
    rate_limit_period = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    quota = models.PositiveBigIntegerField(null=True, blank=True, help_text="Total uses allowed; empty = unlimited.")
    status = models.CharField(max_length=16, choices=ApiKeyStatus.choices, default=ApiKeyStatus.ACTIVE,
                              db_index=True)
    expires = models.DateTimeField(db_index=True)
    # Set when the key is rotated: it keeps working until then, then the grace job revokes it.
    grace_ends = models.DateTimeField(null=True, blank=True, db_index=True)
    rotated_from = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="successor")
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_label = models.CharField(max_length=150, blank=True, help_text="Who created it (user, CLI, API).")
    revoked = models.DateTimeField(null=True, blank=True)
    suspended = models.DateTimeField(null=True, blank=True)
    expiry_warned = models.DateTimeField(null=True, blank=True)
    # Rolled up from the usage counters by a job; never written on the verification path.
    last_used = models.DateTimeField(null=True, blank=True)
    # Personal data (the caller's address): encrypted at rest like the audit trail's addresses,
    # shown only to staff with audit.view_personal_data (keys.admin) and to API callers whose
    # scope allows it (keys.api). Written by the roll-up job (keys.jobs).
    last_used_ip = EncryptedTextField(null=True, blank=True)
    uses = models.PositiveBigIntegerField(default=0)
    # How much of the quota the counter store has been leased, in blocks (keys.quota): never more
    # than ``quota``, never lowered. A store that loses its counters starts again from here, so
    # uses it counted before the loss can't be granted twice.
    quota_leased = models.PositiveBigIntegerField(default=0, editable=False)
    # Bumped on every change that affects verification, so cached answers can be told apart.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["client", "status"])]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def end(self) -> datetime:
        """The expiry, or the end of the rotation grace if that comes first (keys.usability)."""
        return api_key_end(expires=self.expires, grace_ends=self.grace_ends)

    def usable_until(self, *, client_cutoff: datetime | None, now: datetime) -> datetime | None:
        """When this key stops being usable, None if it isn't at ``now`` (keys.usability).

        ``client_cutoff`` is the owning client's ``credentials_revoked_at``, passed in so that a
        caller holding it doesn't pay a query for ``self.client``.
        """
        return api_key_usable_until(status=self.status, expires=self.expires, grace_ends=self.grace_ends,
                                    created=self.created, client_cutoff=client_cutoff, now=now)


class ApiKeyUsage(models.Model):
    """Hourly request counts per key, rolled up from the counters (Redis or embedded)."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    hour = models.DateTimeField()
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "hour"], name="one_usage_row_per_key_hour")]
        ordering = ["-hour"]


class UsageBatch(models.Model):
    """A pending usage batch the roll-up has written (keys.jobs.usage_roll_up), recorded in the same
    transaction: writing the same batch again, after a crash before the store forgot it, is a no-op."""

    id = models.CharField(primary_key=True, max_length=64)
    applied = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-applied"]


class CompromiseResponseStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class CompromiseResponse(models.Model):
    """"Revoke everything of this client": decided in the request, finished by a resumable job.

    The request revokes synchronously what makes the credentials stop working at once (status of
    every key, deletion of every access token); the job then finishes the bookkeeping in batches
    and is re-enqueued by the reconciliation sweep if a worker dies midway.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                               related_name="compromise_responses")
    requested = models.DateTimeField(default=timezone.now)
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=CompromiseResponseStatus.choices,
                              default=CompromiseResponseStatus.PENDING, db_index=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested"]

    def __str__(self) -> str:
        return f"compromise response for {self.client} requested {self.requested:%Y-%m-%d %H:%M} UTC"
