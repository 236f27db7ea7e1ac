"""Traffic per minute, baselines and effective limits, anomalies and the actions taken on them.

Addresses are personal data: network-keyed series and key networks are stored under a keyed
digest (:func:`authserver.anomaly.detection.network_digest`); the network itself appears only in
the encrypted ``Anomaly.personal`` (and in the audit event's personal part).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from authserver.crypto import EncryptedJSONField


class Signal(models.TextChoices):
    VOLUME = "volume", "Volume far above baseline"
    NEW_NETWORK = "new_network", "Key used from a new network"
    AUTH_FAILURES = "auth_failures", "Burst of failed client authentications"
    INVALID_TOKENS = "invalid_tokens", "Burst of invalid tokens from one address"
    REFRESH_REUSE = "refresh_reuse", "Refresh-token reuse"
    TOKEN_FISHING = "token_fishing", "Resource server introspecting many unknown tokens"
    REVOKED_USE = "revoked_use", "Use of a revoked or suspended credential"


class Action(models.TextChoices):
    ALERT = "alert", "Alert only (signed webhook and e-mail)"
    TIGHTEN = "tighten", "Tighten the limit"
    SUSPEND = "suspend", "Suspend the credential"


class AnomalyStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class TrafficMinute(models.Model):
    """Events of one series in one minute: ``client:<client_id>``, ``key:<uuid>``, ``authfail:<digest>``…"""

    subject = models.CharField(max_length=120)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    # Already checked for anomalies (late counts for a checked minute are added, not re-checked).
    evaluated = models.BooleanField(default=False)
    # Anomalous minutes are left out of the baseline, so an attack does not raise its own limit.
    flagged = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "minute"], name="one_traffic_row_per_minute")]
        indexes = [models.Index(fields=["evaluated", "minute"]), models.Index(fields=["minute"])]
        ordering = ["subject", "minute"]

    def __str__(self) -> str:
        return f"{self.subject} {self.minute:%Y-%m-%d %H:%M}: {self.count}"


class Baseline(models.Model):
    """A credential's traffic statistics and its effective per-minute limit."""

    subject = models.CharField(max_length=120, unique=True,
                               help_text="client:<client_id>, key:<uuid> or rs:<client_id>")
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+")
    key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    first_seen = models.DateTimeField(default=timezone.now)
    samples = models.PositiveIntegerField(default=0, help_text="Minutes of history behind the statistics.")
    mean = models.FloatField(default=0)
    ewma = models.FloatField(default=0, help_text="Exponentially weighted mean of the per-minute count.")
    ewm_std = models.FloatField(default=0)
    median = models.FloatField(default=0)
    high = models.FloatField(default=0, help_text="High quantile (ANOMALY_QUANTILE) of the per-minute count.")
    computed_limit = models.PositiveIntegerField(default=0, help_text="From the baseline alone, per minute.")
    effective_limit = models.PositiveIntegerField(default=0, help_text="What the limiter applies, per minute.")
    pinned_limit = models.PositiveIntegerField(null=True, blank=True,
                                               help_text="Operator-fixed limit per minute; overrides the baseline.")
    tightened_limit = models.PositiveIntegerField(null=True, blank=True)
    tightened_until = models.DateTimeField(null=True, blank=True)
    floored = models.BooleanField(default=False, help_text="Held at the floor (client 'suspension') until undone.")
    history = models.JSONField(default=list, blank=True, help_text="Recent [time, effective, high quantile] values.")
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["subject"]
        verbose_name = "baseline and effective limit"

    def __str__(self) -> str:
        return self.subject


class KeyNetwork(models.Model):
    """A network (/24 or /48) an API key has been used from, by keyed digest."""

    key = models.ForeignKey("keys.ApiKey", on_delete=models.CASCADE, related_name="+")
    network_digest = models.CharField(max_length=64)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "network_digest"], name="one_row_per_key_network")]


class AnomalyPolicy(models.Model):
    """What to do when ``signal`` fires: for one client, or for every client (client empty)."""

    signal = models.CharField(max_length=32, choices=Signal.choices)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+",
                               help_text="Empty: the default for every client.")
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.ALERT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["signal", "client"], name="one_policy_per_signal_client"),
            models.UniqueConstraint(fields=["signal"], condition=models.Q(client__isnull=True),
                                    name="one_default_policy_per_signal"),
        ]
        verbose_name_plural = "anomaly policies"

    def __str__(self) -> str:
        return f"{self.signal} -> {self.action} ({self.client or 'every client'})"


class Anomaly(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    signal = models.CharField(max_length=32, choices=Signal.choices, db_index=True)
    subject = models.CharField(max_length=120, db_index=True,
                               help_text="client:<client_id>, key:<uuid> or net:<digest> (never an address)")
    series = models.CharField(max_length=120, blank=True, help_text="Traffic series charted around the anomaly.")
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=AnomalyStatus.choices, default=AnomalyStatus.OPEN,
                              db_index=True)
    minute = models.DateTimeField(help_text="The minute the signal fired in.")
    detected = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1)
    evidence = models.JSONField(default=dict, blank=True)
    personal = EncryptedJSONField(null=True, blank=True, help_text="Addresses (encrypted).")
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.ALERT)
    action_taken = models.CharField(max_length=300, blank=True)
    action_undone = models.DateTimeField(null=True, blank=True)
    handled_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-detected"]
        verbose_name_plural = "anomalies"
        indexes = [models.Index(fields=["signal", "subject", "status"])]

    def __str__(self) -> str:
        return f"{self.get_signal_display()}: {self.subject}"


class Cursor(models.Model):
    """Where the job stopped reading a source (e.g. the audit trail's refresh-token reuse events)."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.BigIntegerField(default=0)
