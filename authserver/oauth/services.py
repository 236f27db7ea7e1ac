"""Writes on tokens and codes that are not protocol exchanges: revocation by hand (admin), cleanup."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
    revoke_access_token,
)

from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.oauth.device.models import DeviceAuthorization
from clients.services import retired_secrets_purge

log = logging.getLogger("authserver.oauth")


def _audit_bulk(event: str, *, actor: Any, rows: list[tuple[Any, str]]) -> None:
    """One event for one bulk action: how many, and which (ids and display hints, never a value)."""
    audit_record(event=event, actor=actor_label(actor), subject=event.partition(".")[0],
                 details={"count": len(rows), "ids": [str(pk) for pk, _ in rows], "hints": [h for _, h in rows]})


def access_tokens_revoke(*, pks: Iterable[Any], actor: Any) -> int:
    """Revoke access tokens by hand; returns how many. One audit event for the whole action.

    DOT's shared revoke path revokes the bound refresh token too, so it can't mint a replacement
    (RFC 7009 §2.1); each revocation fans out to every worker (AccessToken.revoke).
    """
    with transaction.atomic():
        tokens = list(get_access_token_model().objects.filter(pk__in=list(pks)))
        rows = [(token.pk, token.hint) for token in tokens]  # before: a revoked access token is deleted
        for token in tokens:
            revoke_access_token(token)
        if rows:
            _audit_bulk("access_tokens.revoked", actor=actor, rows=rows)
    return len(rows)


def refresh_tokens_revoke(*, pks: Iterable[Any], actor: Any) -> int:
    """Revoke refresh tokens by hand (their bound access tokens with them); one audit event.

    The rows stay as revoked tombstones: reuse detection needs them (RFC 9700 §4.14.2).
    """
    with transaction.atomic():
        tokens = list(get_refresh_token_model().objects.filter(pk__in=list(pks), revoked__isnull=True))
        for token in tokens:
            token.revoke()
        if tokens:
            _audit_bulk("refresh_tokens.revoked", actor=actor, rows=[(t.pk, t.hint) for t in tokens])
    return len(tokens)


def grants_revoke(*, pks: Iterable[Any], actor: Any) -> int:
    """Revoke unused authorization codes by hand: each becomes used and expired; one audit event.

    Same as clients.services.client_revoke_tokens: a used code presented again is refused (and
    treated as a replay, RFC 6749 §4.1.2).
    """
    now = timezone.now()
    with transaction.atomic():
        model = get_grant_model()
        rows = list(model.objects.select_for_update().filter(pk__in=list(pks), used__isnull=True)
                    .values_list("pk", "hint"))
        revoked: int = model.objects.filter(pk__in=[pk for pk, _ in rows]).update(used=now, expires=now)
        if rows:
            _audit_bulk("authorization_codes.revoked", actor=actor, rows=rows)
    return revoked


def _delete_in_batches(queryset: QuerySet[Any], batch_size: int) -> int:
    """Delete rows a batch at a time, each batch its own short transaction.

    Short transactions keep locks brief, so introspection and token issuance never wait on the
    sweep; a sweep interrupted midway simply resumes where it stopped on the next run.
    After each batch the sweep pauses ``CLEANUP_PAUSE_RATIO`` times as long as the batch took
    (at most 2 s): a background job yields the CPU and the disk to the requests that are waiting
    for them (the bench measures introspection p99 while this runs).
    """
    total = 0
    model = queryset.model
    while True:
        started = time.monotonic()
        pks = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not pks:
            return total
        with transaction.atomic():
            deleted, _ = model.objects.filter(pk__in=pks).delete()
        total += len(pks)
        if deleted == 0:  # pragma: no cover - defensive: never loop forever
            return total
        time.sleep(min(2.0, (time.monotonic() - started) * settings.CLEANUP_PAUSE_RATIO))


def tokens_cleanup(*, now: datetime | None = None, batch_size: int | None = None,
                   actor: Any = "job:authserver.oauth.cleanup_expired_credentials") -> dict[str, int]:
    """Delete expired tokens, dead refresh-token families, old codes, old device authorizations and retired secrets.

    Idempotent. Revoked refresh tokens are kept until their family's absolute deadline: reuse
    detection (RFC 9700 §4.14.2) needs them to recognise a replay.
    """
    now = now or timezone.now()
    batch = batch_size or cast(int, settings.OAUTH2_PROVIDER.get("CLEAR_EXPIRED_TOKENS_BATCH_SIZE", 5000))
    refresh_cutoff = now - timedelta(seconds=settings.REFRESH_TOKEN_MAX_SECONDS)
    counts = {
        "refresh_tokens": _delete_in_batches(
            get_refresh_token_model().objects.filter(
                Q(family_expires__lte=now) | Q(family_expires__isnull=True, created__lte=refresh_cutoff)
            ),
            batch,
        ),
        "access_tokens": _delete_in_batches(
            get_access_token_model().objects.filter(expires__lte=now, refresh_token__isnull=True), batch
        ),
        "authorization_codes": _delete_in_batches(
            get_grant_model().objects.filter(expires__lte=now - timedelta(seconds=settings.GRANT_RETENTION_SECONDS)),
            batch,
        ),
        # RFC 8628: device authorizations past their expiry (kept as long as codes, then gone).
        "device_authorizations": _delete_in_batches(
            DeviceAuthorization.objects.filter(expires__lte=now - timedelta(seconds=settings.GRANT_RETENTION_SECONDS)),
            batch,
        ),
        "retired_client_secrets": retired_secrets_purge(now=now, actor=actor),
    }
    log.info("expired credentials cleaned up", extra=counts)
    return counts
