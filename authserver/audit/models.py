"""The audit trail: an append-only, hash-chained record of every security event.

Appending is a plain INSERT (no lock: issuing a token never waits on another one's audit write).
The sealer (authserver.audit.sealer) chains the committed events afterwards, a few seconds later:
it gives each the next ``seq`` (1, 2, 3, ... with no gap) and its ``chain``, HMAC-SHA256(chain
key, previous chain || canonical event), in ``seq`` order; the chain key is held by the key
store, not the database. Someone who can write the database can delete or edit rows but cannot
recompute a consistent chain, so ``manage.py audit verify`` names the first event that no longer
fits. Ids come from the database sequence and commit out of order (and a rolled-back
transaction leaves a gap), so the chain's order is ``seq``, never ``id``. Personal data
(addresses, user agents, usernames) is kept only in ``personal``, encrypted (authserver.crypto),
never in the clear columns.
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
    # Both NULL until the sealer chains the event (seconds after it commits).
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    chain = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        # The sealer's work queue: only the few unsealed rows are in it.
        indexes = [models.Index(fields=["id"], name="audit_unsealed_idx", condition=models.Q(seq__isnull=True))]
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
    """One row: the last sealed event's ``seq`` and chain value, written only by the sealer."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    chain = models.CharField(max_length=64, default="")


class AuditCheckpointState(models.Model):
    """One row: the last checkpoint written outside the database (authserver.audit.checkpoints).

    ``audit verify`` uses it to tell "no checkpoint was ever written" from "the checkpoint file is
    gone", and to find that checkpoint in the file. Checkpoints the witness has not acknowledged yet
    wait in ``witness_pending`` (oldest first) and are sent again with the next one.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    written = models.BigIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")
    last_at = models.DateTimeField(null=True, blank=True)
    witness_pending = models.JSONField(default=list)
    witness_failures = models.BigIntegerField(default=0)
