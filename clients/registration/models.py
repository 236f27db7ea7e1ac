"""Dynamic client registration (RFC 7591, RFC 7592; docs/dynamic-registration.md).

Two credentials, both in the one format and stored only as their SHA-256 digest:

* ``iat_…`` :class:`InitialAccessToken`: created by the operator (``manage.py client registration-token
  create``); in ``AUTHSERVER_DCR=token`` mode a registration must present one (RFC 7591 §3). It may
  expire and may be limited to a number of registrations.
* ``rat_…`` registration access token: returned once by a registration, it lets the client read,
  update and delete that registration (RFC 7592 §3); its digest lives on :class:`Registration`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class InitialAccessToken(models.Model):
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)
    expires_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)
    uses_allowed: models.PositiveIntegerField[int | None, int | None] = models.PositiveIntegerField(
        null=True, blank=True, help_text="Registrations it may make; empty: no limit.")
    uses: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    revoked_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[models.Manager[InitialAccessToken]]

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "initial access token"

    def __str__(self) -> str:
        return f"initial access token {self.hint}"

    def refusal(self, now: datetime) -> str | None:
        """Why this token may not register a client now, or None: the one rule (RFC 7591 §3)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.uses_allowed is not None and self.uses >= self.uses_allowed:
            return "used_up"
        return None


class Registration(models.Model):
    """A client registered through RFC 7591: its registration access token and whether it was ever used."""

    client = models.OneToOneField(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                                  primary_key=True, related_name="registration")
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=16, editable=False)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now, db_index=True)
    # Set when the client first obtains a token (clients.registration.signals); never-used registrations
    # expire after AUTHSERVER_DCR_UNUSED_SECONDS (clients.registration.services.registrations_expire_unused).
    first_token_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True)
    initial_access_token = models.ForeignKey(InitialAccessToken, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="registrations")

    objects: ClassVar[models.Manager[Registration]]

    class Meta:
        verbose_name = "dynamic registration"

    def __str__(self) -> str:
        return f"registration of {self.client_id}"
