"""The revocation events resource servers follow (``GET /oauth/revocations``, docs/revocation-stream.md).

One row per thing a resource server's cache must forget, written in the same transaction as the
change (:func:`authserver.revocation.events.record`): never lost, never seen before the commit.
A row names a credential only by the digest the database already stores (SHA-256 hex), a client
by its public ``client_id``, or nothing (``generation``: forget everything). The ``id`` orders
the stream and is what ``Last-Event-ID`` resumes from.
"""

from __future__ import annotations

from django.db import models


class RevocationEvent(models.Model):
    # authserver.revocation.feed names them (and says what each one means).
    KINDS = [(kind, kind.replace("_", " ")) for kind in ("access_token", "refresh_token", "api_key", "client",
                                                        "generation")]

    id = models.BigAutoField(primary_key=True)
    kind: models.CharField[str, str] = models.CharField(max_length=16, choices=KINDS)
    digest: models.CharField[str, str] = models.CharField(max_length=64, blank=True)
    client_id: models.CharField[str, str] = models.CharField(max_length=100, blank=True)
    # Unix seconds: what the stream sends as "at", and what the prune job compares.
    at: models.FloatField[float, float] = models.FloatField(db_index=True)

    class Meta:
        verbose_name = "revocation event"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"revocation event {self.id} ({self.kind})"
