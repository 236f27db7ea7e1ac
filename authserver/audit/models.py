"""The audit trail: an append-only, hash-chained record of every security event.

Each event's ``chain`` is HMAC-SHA256(chain key, previous chain || canonical event), where the
chain key is held by the key store, not the database. Someone who can write the database can
delete or edit rows but cannot recompute a consistent chain, so ``manage.py audit verify`` names
the first event that no longer fits. Personal data (addresses, user agents, usernames) is kept
only in ``personal``, encrypted (authserver.crypto), never in the clear columns.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class AuditEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    event = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, default="success")
    # Who did it and to what, as non-personal references: "client:<client_id>", "key:<uuid>",
    # "user:<pk>", "system", "cli", "api:<client_id>".
    actor = models.CharField(max_length=200, blank=True, db_index=True)
    subject = models.CharField(max_length=200, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    personal = models.BinaryField(null=True, blank=True, editable=False)
    chain = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-id"]
        permissions = [("view_personal_data", "Can see decrypted personal data in audit events")]

    def __str__(self) -> str:
        return f"#{self.id} {self.event} {self.subject}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit events are append-only")


class AuditChainHead(models.Model):
    """One row: the last event's id and chain value, locked by every writer (keeps the chain linear)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    chain = models.CharField(max_length=64, default="")
