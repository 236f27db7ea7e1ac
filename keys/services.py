"""Writes on API keys. Revocation is decided here, synchronously; jobs only finish it.

Every way a key stops working (rotation without grace, revocation, suspension, the end of a
rotation grace, expiry) goes through :func:`_api_key_retire`, so the access tokens exchanged for
the key (RFC 8693, keys.exchange) die with it on every path, and each change writes one audit
event in its own transaction. The beat jobs call the ``api_keys_*`` services below with an actor
``job:<task name>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver import credentials, revocation
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.jobs import enqueue_on_commit
from authserver.observability import metrics
from authserver.revocation import feed
from clients.models import Client
from keys import policy
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse, CompromiseResponseStatus

log = logging.getLogger("authserver.keys")


def _actor_fields(actor: Any) -> dict[str, Any]:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return {"created_by": user, "created_by_label": str(getattr(actor, "username", None) or actor or "system")[:150]}


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
        now = timezone.now()
        if old.grace_ends is not None or old.usable_until(client_cutoff=cutoff, now=now) is None:
            # A successor inherits trust: only a key that verifies right now may have one (an
            # expired key, or one caught by a compromise response, must not be revived this way).
            raise policy.KeyPolicyError("only an active key that is not already rotated can be rotated")
        lifetime = min(old.expires - old.created, timedelta(seconds=settings.API_KEY_MAX_LIFETIME_SECONDS))
        plaintext = credentials.mint(credentials.api_key_prefix())
        new = ApiKey.objects.create(
            client=old.client, name=old.name, digest=credentials.digest(plaintext), hint=credentials.hint(plaintext),
            scope=old.scope, audiences=old.audiences, allowed_ips=old.allowed_ips, rate_limit=old.rate_limit,
            rate_limit_period=old.rate_limit_period, quota=old.quota, expires=now + lifetime, rotated_from=old,
            **_actor_fields(actor),
        )
        old.grace_ends = min(now + grace, old.expires)
        details = {"successor": str(new.id), "successor_hint": new.hint, "grace_ends": old.grace_ends.isoformat()}
        if grace == timedelta(0):
            _api_key_retire(old, status=ApiKeyStatus.REVOKED, stamp="revoked", at=now, actor=actor,
                            event="api_key.rotated", details=details, fields=["grace_ends"])
        else:
            # The old key works until its grace ends, and so do the tokens exchanged for it: none
            # may outlive the grace (the grace job then retires the key through the same path).
            cut = _access_tokens().filter(source_api_key=old.pk, expires__gt=old.grace_ends)
            shortened = list(cut.values_list("token_checksum", flat=True))
            details["exchanged_tokens_cut_to_grace"] = cut.update(expires=old.grace_ends)
            old.version += 1
            old.save(update_fields=["grace_ends", "version"])
            # Every worker drops cached answers before we return; resource servers drop the key's
            # and its tokens' answers, whose expiry just moved to the grace end.
            revocation.invalidate(settle=True, events=[*feed.digests(feed.API_KEY, [old.digest]),
                                                       *feed.digests(feed.ACCESS_TOKEN, shortened)])
            audit_record(event="api_key.rotated", actor=actor_label(actor), subject=f"key:{old.id}", details=details)
    log.info("api key rotated", extra={"key_id": str(old.id), "successor_id": str(new.id)})
    return new, plaintext


def _access_tokens() -> Any:
    return get_access_token_model().objects


def _api_key_retire(key: ApiKey, *, status: str, stamp: str | None, at: datetime, actor: Any, event: str,
                    details: dict[str, Any] | None = None, fields: Iterable[str] = (),
                    settle: bool | None = True) -> int:
    """Take a locked ``key`` out of service; returns how many exchanged tokens died with it.

    The one retire path: the status (revoked, expired, or suspended: the reversible form), the
    version that tells cached answers apart, the access tokens exchanged for the key (RFC 8693:
    a token never outlives the key it was exchanged for, and resuming a suspended key does not
    bring them back), the fan-out of the revocation to every worker, and the audit event, all in
    the caller's transaction. ``settle=None`` skips the fan-out: the jobs only record what
    verification already refuses (a key past its end; its exchanged tokens never outlive that end).
    """
    key.status = status
    key.version += 1
    update = ["status", "version", *fields]
    if stamp:
        setattr(key, stamp, at)
        update.append(stamp)
    key.save(update_fields=update)
    tokens = _access_tokens().filter(source_api_key=key.pk)
    dying = list(tokens.values_list("token_checksum", flat=True)) if settle is not None else []
    exchanged: int
    exchanged, _ = tokens.delete()
    if settle is not None:
        revocation.invalidate(settle=settle, events=[*feed.digests(feed.API_KEY, [key.digest]),
                                                     *feed.digests(feed.ACCESS_TOKEN, dying)])
    audit_record(event=event, actor=actor_label(actor), subject=f"key:{key.id}",
                 details={"hint": key.hint, **(details or {}), "exchanged_tokens_revoked": exchanged})
    return exchanged


def _set_status(key: ApiKey, status: str, *, allowed_from: set[str], stamp: str | None, actor: Any = None,
                event: str = "") -> ApiKey:
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.status == status:
            return locked  # idempotent
        if locked.status not in allowed_from:
            raise policy.KeyPolicyError(f"a {locked.status} key cannot become {status}")
        if status != ApiKeyStatus.ACTIVE:
            _api_key_retire(locked, status=status, stamp=stamp, at=timezone.now(), actor=actor, event=event)
            return locked
        locked.status = status
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        # Every worker drops cached answers before we return (a resource server its negative one).
        revocation.invalidate(settle=True, events=feed.digests(feed.API_KEY, [locked.digest]))
        audit_record(event=event, actor=actor_label(actor), subject=f"key:{locked.id}",
                     details={"hint": locked.hint, "exchanged_tokens_revoked": 0})
    return locked


def api_key_revoke(*, key: ApiKey, actor: Any = None) -> ApiKey:
    revoked = _set_status(key, ApiKeyStatus.REVOKED, allowed_from={ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED,
                                                                   ApiKeyStatus.EXPIRED}, stamp="revoked",
                          actor=actor, event="api_key.revoked")
    log.info("api key revoked", extra={"key_id": str(key.id), "actor": str(actor or "system")})
    metrics.revocations.labels("api_key").inc()
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


# -- What the beat jobs record (keys.tasks) -------------------------------------------------------
JOB_BATCH = 500


def _retire_each(queryset: Any, *, status: str, stamp: str | None, at: Any, actor: Any, event: str) -> int:
    """Retire every key of ``queryset``, each in its own short transaction (bounded, resumable).

    Each key is locked and checked again before it changes, so a key revoked or resumed by hand
    meanwhile is left alone, and a run that dies midway is picked up by the next one.
    """
    done = 0
    while True:
        pks = list(queryset.values_list("pk", flat=True)[:JOB_BATCH])
        if not pks:
            return done
        for pk in pks:
            with transaction.atomic():
                key = queryset.select_for_update().filter(pk=pk).first()
                if key is None:
                    continue  # changed since the batch was read; it no longer matches
                when = at(key)
                _api_key_retire(key, status=status, stamp=stamp, at=when, actor=actor, event=event,
                                details={"at": when.isoformat()}, settle=None)
                done += 1


def api_keys_grace_end(*, now: datetime | None = None, actor: Any = "job:keys.grace_periods_end") -> int:
    """Revoke, as of its grace end, every rotated key whose grace has passed (verification already refuses it)."""
    ended = ApiKey.objects.filter(status=ApiKeyStatus.ACTIVE, grace_ends__lte=now or timezone.now())
    return _retire_each(ended, status=ApiKeyStatus.REVOKED, stamp="revoked", at=lambda key: key.grace_ends,
                        actor=actor, event="api_key.grace_ended")


def api_keys_expire(*, now: datetime | None = None, actor: Any = "job:keys.expire") -> int:
    """Mark expired every active or suspended key past its expiry (verification already refuses it)."""
    now = now or timezone.now()
    past = ApiKey.objects.filter(status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED], expires__lte=now)
    return _retire_each(past, status=ApiKeyStatus.EXPIRED, stamp=None, at=lambda key: key.expires, actor=actor,
                        event="api_key.expired")


def api_key_expiry_warned(*, key: ApiKey, at: datetime, channels: list[str], actor: Any) -> bool:
    """Record that the owner of ``key`` was warned of its expiry (once: False if already recorded)."""
    with transaction.atomic():
        if not ApiKey.objects.filter(pk=key.pk, expiry_warned__isnull=True).update(expiry_warned=at):
            return False
        audit_record(event="api_key.expiry_warned", actor=actor_label(actor), subject=f"key:{key.id}",
                     details={"hint": key.hint, "expires": key.expires.isoformat(), "channels": channels})
    return True


def compromise_response_start(*, client: Client, actor: Any = None) -> CompromiseResponse:
    """Revoke every API key and token of ``client`` now; a job finishes the bookkeeping.

    Effective immediately: ``credentials_revoked_at`` on the client makes verification treat
    every key and token created up to this instant as revoked, in the same transaction that
    records the decision. The job then marks each key revoked and deletes each token in batches;
    if a worker dies midway the reconciliation sweep re-enqueues it, and running it again is a
    no-op.
    """
    with transaction.atomic():
        now = timezone.now()
        Client.objects.filter(pk=client.pk).update(credentials_revoked_at=now)
        response = CompromiseResponse.objects.create(client=client, requested=now,
                                                     requested_by=str(getattr(actor, "username", None) or actor
                                                                      or "system")[:150])
        # Every worker drops cached answers before we return; resource servers all of the client's.
        revocation.invalidate(settle=True, events=[feed.client(client.client_id)])
        audit_record(event="client.compromise_response", actor=actor_label(actor), subject=f"client:{client.client_id}",
                     details={"response_id": str(response.pk), "effective": now.isoformat()})
        # The task (keys.tasks, the interface layer) by name: enqueued after commit, swept if lost.
        enqueue_on_commit("keys.compromise_response_finish", str(response.pk))
    log.warning("compromise response started", extra={"client_id": client.client_id,
                                                      "response_id": str(response.pk)})
    return response


def compromise_response_finish(*, response_id: str,
                                actor: Any = "job:keys.compromise_response_finish") -> dict[str, int]:
    """Revoke, in batches, every key and token of the client created up to the decision.

    Resumable: each batch is its own transaction and only touches what is still live, so a
    worker killed midway leaves a consistent state and a rerun picks up where it stopped; a run
    on a finished response changes nothing. Credentials created after the decision are not
    touched. Each batch writes one audit event (what it changed: kind, count, ids) in its own
    transaction, and the end of the response one more.
    """
    response = CompromiseResponse.objects.select_related("client").get(pk=response_id)
    if response.status == CompromiseResponseStatus.DONE:
        return dict(response.counts)
    CompromiseResponse.objects.filter(pk=response.pk).update(
        status=CompromiseResponseStatus.RUNNING, heartbeat=timezone.now()
    )
    client, cutoff = response.client, response.requested
    counts = dict(response.counts or {})
    pause = float(settings.COMPROMISE_BATCH_PAUSE)

    def step(name: str, queryset: Any, action: Any) -> None:
        while True:
            pks = list(queryset.values_list("pk", flat=True)[:_compromise_batch_size()])
            if not pks:
                return
            with transaction.atomic():
                done = action(pks)
                counts[name] = counts.get(name, 0) + done
                CompromiseResponse.objects.filter(pk=response.pk).update(heartbeat=timezone.now(), counts=counts)
                audit_record(event="client.compromise_response_batch", actor=actor_label(actor),
                             subject=f"client:{client.client_id}",
                             details={"response_id": str(response.pk), "kind": name, "count": done,
                                      "ids": [str(pk) for pk in pks]})
            if pause:
                time.sleep(pause)  # test hook: lets a test kill the worker between batches

    now = timezone.now()
    step(
        "api_keys",
        ApiKey.objects.filter(
            client=client, created__lte=cutoff, status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED]
        ),
        lambda pks: ApiKey.objects.filter(pk__in=pks).update(
            status=ApiKeyStatus.REVOKED, revoked=now, version=F("version") + 1
        ),
    )
    refresh = get_refresh_token_model()
    step(
        "refresh_tokens",
        refresh.objects.filter(application=client, created__lte=cutoff, revoked__isnull=True),
        lambda pks: refresh.objects.filter(pk__in=pks).update(revoked=now, access_token=None),
    )
    access = get_access_token_model()
    step(
        "access_tokens",
        access.objects.filter(application=client, created__lte=cutoff),
        lambda pks: access.objects.filter(pk__in=pks).delete()[0],
    )
    grant = get_grant_model()
    step(
        "authorization_codes",
        grant.objects.filter(application=client, created__lte=cutoff, used__isnull=True),
        lambda pks: grant.objects.filter(pk__in=pks).update(used=now, expires=now),
    )
    with transaction.atomic():
        CompromiseResponse.objects.filter(pk=response.pk).update(
            status=CompromiseResponseStatus.DONE, finished=timezone.now(), counts=counts
        )
        audit_record(event="client.compromise_response_done", actor=actor_label(actor),
                     subject=f"client:{client.client_id}", details={"response_id": str(response.pk), **counts})
    return counts


def _compromise_batch_size() -> int:
    return int(settings.COMPROMISE_BATCH_SIZE)  # read at call time so tests can shrink it
