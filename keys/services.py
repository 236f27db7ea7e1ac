"""Writes on API keys. Revocation is decided here, synchronously; jobs only finish it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from authserver import credentials, revocation
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.jobs import enqueue_on_commit
from clients.models import Client
from keys import policy
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse

log = logging.getLogger("authserver.keys")


def _actor_fields(actor: Any) -> dict[str, Any]:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return {"created_by": user, "created_by_label": str(getattr(actor, "username", None) or actor or "system")[:150]}


def _fan_out_on_commit(*, settle: bool = True) -> None:
    """Every worker drops cached answers before the revoking call returns (authserver.revocation)."""
    revocation.invalidate(settle=settle)


def api_key_create(
    *,
    client: Client,
    name: str,
    scopes: Iterable[str] | None = None,
    audiences: Iterable[str] | None = None,
    allowed_ips: Iterable[str] = (),
    expires_in: timedelta | None = None,
    rate_limit: tuple[int, int] | None = None,
    quota: int | None = None,
    actor: Any = None,
) -> tuple[ApiKey, str]:
    """Issue a key. Returns ``(key, plaintext)``: the plaintext exists only in this return value."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise policy.KeyPolicyError("name must be 1 to 100 characters")
    if quota is not None and quota < 1:
        raise policy.KeyPolicyError("quota must be at least 1")
    limit, period = policy.check_rate_limit(rate_limit)
    plaintext = credentials.mint(credentials.api_key_prefix())
    with transaction.atomic():
        key = _api_key_insert(client=client, name=name, plaintext=plaintext, scopes=scopes, audiences=audiences,
                              allowed_ips=allowed_ips, limit=limit, period=period, quota=quota, expires_in=expires_in,
                              actor=actor)
        audit_record(event="api_key.created", actor=actor_label(actor), subject=f"key:{key.id}",
                     details={"client_id": client.client_id, "hint": key.hint, "name": key.name, "scope": key.scope,
                              "audiences": key.audiences, "allowed_ips": key.allowed_ips,
                              "expires": key.expires.isoformat(), "rate_limit": key.rate_limit, "quota": key.quota})
    log.info("api key created", extra={"key_id": str(key.id), "client_id": client.client_id})
    return key, plaintext


def _api_key_insert(*, client: Client, name: str, plaintext: str, scopes: Any, audiences: Any, allowed_ips: Any,
                    limit: int | None, period: int | None, quota: int | None, expires_in: timedelta | None,
                    actor: Any) -> ApiKey:
    return ApiKey.objects.create(
        client=client,
        name=name,
        digest=credentials.digest(plaintext),
        hint=credentials.hint(plaintext),
        scope=policy.check_scopes(client, scopes),
        audiences=policy.check_audiences(client, audiences),
        allowed_ips=policy.parse_networks(allowed_ips),
        rate_limit=limit,
        rate_limit_period=period,
        quota=quota,
        expires=timezone.now() + policy.check_lifetime(expires_in),
        **_actor_fields(actor),
    )


def api_key_rotate(*, key: ApiKey, grace: timedelta | None = None, actor: Any = None) -> tuple[ApiKey, str]:
    """Issue a successor with the same policy; the old key works until ``grace`` ends.

    The successor's lifetime is the old key's original lifetime, capped by the server maximum.
    """
    grace = timedelta(seconds=settings.API_KEY_GRACE_SECONDS) if grace is None else grace
    if grace < timedelta(0) or grace > timedelta(days=30):
        raise policy.KeyPolicyError("grace must be between 0 and 30 days")
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().get(pk=key.pk)
        cutoff = Client.objects.filter(pk=old.client_id).values_list("credentials_revoked_at", flat=True).first()
        usable = (old.status == ApiKeyStatus.ACTIVE and old.grace_ends is None and old.expires > timezone.now()
                  and (cutoff is None or old.created > cutoff))
        if not usable:
            # A successor inherits trust: only a key that verifies right now may have one (an
            # expired key, or one caught by a compromise response, must not be revived this way).
            raise policy.KeyPolicyError("only an active key that is not already rotated can be rotated")
        lifetime = min(old.expires - old.created, timedelta(seconds=settings.API_KEY_MAX_LIFETIME_SECONDS))
        plaintext = credentials.mint(credentials.api_key_prefix())
        now = timezone.now()
        new = ApiKey.objects.create(
            client=old.client, name=old.name, digest=credentials.digest(plaintext), hint=credentials.hint(plaintext),
            scope=old.scope, audiences=old.audiences, allowed_ips=old.allowed_ips, rate_limit=old.rate_limit,
            rate_limit_period=old.rate_limit_period, quota=old.quota, expires=now + lifetime, rotated_from=old,
            **_actor_fields(actor),
        )
        old.grace_ends = min(now + grace, old.expires)
        old.version += 1
        if grace == timedelta(0):
            old.status, old.revoked = ApiKeyStatus.REVOKED, now
        old.save(update_fields=["grace_ends", "version", "status", "revoked"])
        _fan_out_on_commit()
        audit_record(event="api_key.rotated", actor=actor_label(actor), subject=f"key:{old.id}",
                     details={"successor": str(new.id), "successor_hint": new.hint,
                              "grace_ends": old.grace_ends.isoformat()})
    log.info("api key rotated", extra={"key_id": str(old.id), "successor_id": str(new.id)})
    return new, plaintext


def _set_status(key: ApiKey, status: str, *, allowed_from: set[str], stamp: str | None, actor: Any = None,
                event: str = "") -> ApiKey:
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.status == status:
            return locked  # idempotent
        if locked.status not in allowed_from:
            raise policy.KeyPolicyError(f"a {locked.status} key cannot become {status}")
        locked.status = status
        locked.version += 1
        fields = ["status", "version"]
        if stamp:
            setattr(locked, stamp, timezone.now())
            fields.append(stamp)
        locked.save(update_fields=fields)
        exchanged = 0
        if status != ApiKeyStatus.ACTIVE:
            # Tokens exchanged for the key (RFC 8693) die with it.
            exchanged, _ = get_access_token_model().objects.filter(source_api_key=locked.pk).delete()
        _fan_out_on_commit()
        audit_record(event=event or f"api_key.{status}", actor=actor_label(actor), subject=f"key:{locked.id}",
                     details={"hint": locked.hint, "exchanged_tokens_revoked": exchanged})
    return locked


def api_key_revoke(*, key: ApiKey, actor: Any = None) -> ApiKey:
    revoked = _set_status(key, ApiKeyStatus.REVOKED, allowed_from={ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED,
                                                                   ApiKeyStatus.EXPIRED}, stamp="revoked",
                          actor=actor, event="api_key.revoked")
    log.info("api key revoked", extra={"key_id": str(key.id), "actor": str(actor or "system")})
    return revoked


def api_key_suspend(*, key: ApiKey, actor: Any = None) -> ApiKey:
    suspended = _set_status(key, ApiKeyStatus.SUSPENDED, allowed_from={ApiKeyStatus.ACTIVE}, stamp="suspended",
                            actor=actor, event="api_key.suspended")
    log.info("api key suspended", extra={"key_id": str(key.id), "actor": str(actor or "system")})
    return suspended


def api_key_resume(*, key: ApiKey, actor: Any = None) -> ApiKey:
    resumed = _set_status(key, ApiKeyStatus.ACTIVE, allowed_from={ApiKeyStatus.SUSPENDED}, stamp=None, actor=actor,
                          event="api_key.resumed")
    log.info("api key resumed", extra={"key_id": str(key.id), "actor": str(actor or "system")})
    return resumed


def compromise_response_start(*, client: Client, actor: Any = None) -> CompromiseResponse:
    """Revoke every API key and token of ``client`` now; a job finishes the bookkeeping.

    Effective immediately: ``credentials_revoked_at`` on the client makes verification treat
    every key and token created up to this instant as revoked, in the same transaction that
    records the decision. The job then marks each key revoked and deletes each token in batches;
    if a worker dies midway the reconciliation sweep re-enqueues it, and running it again is a
    no-op.
    """
    from keys.tasks import compromise_response_finish

    with transaction.atomic():
        now = timezone.now()
        Client.objects.filter(pk=client.pk).update(credentials_revoked_at=now)
        response = CompromiseResponse.objects.create(client=client, requested=now,
                                                     requested_by=str(getattr(actor, "username", None) or actor
                                                                      or "system")[:150])
        _fan_out_on_commit()
        audit_record(event="client.compromise_response", actor=actor_label(actor), subject=f"client:{client.client_id}",
                     details={"response_id": str(response.pk), "effective": now.isoformat()})
        enqueue_on_commit(compromise_response_finish, str(response.pk))
    log.warning("compromise response started", extra={"client_id": client.client_id,
                                                      "response_id": str(response.pk)})
    return response
