"""What the API-key jobs do (the Celery tasks in keys/tasks.py are thin wrappers over these).

None of them decides security on its own: grace ends and expiries were fixed when the key was
rotated or created, and verification already refuses a key past either; these only record it.
Each is idempotent and works in bounded batches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.crypto import secret
from clients.services import retired_secrets_purge
from keys.models import ApiKey, ApiKeyStatus, ApiKeyUsage, CompromiseResponse, CompromiseResponseStatus
from keys.usage import drain_usage

log = logging.getLogger("authserver.keys.jobs")
BATCH = 500


def grace_periods_end(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    keys = 0
    while True:
        pks = list(
            ApiKey.objects.filter(status=ApiKeyStatus.ACTIVE, grace_ends__lte=now).values_list("pk", flat=True)[:BATCH]
        )
        if not pks:
            break
        keys += ApiKey.objects.filter(pk__in=pks, status=ApiKeyStatus.ACTIVE).update(
            status=ApiKeyStatus.REVOKED, revoked=F("grace_ends"), version=F("version") + 1
        )
    return {"api_keys_revoked": keys, "client_secrets_retired": retired_secrets_purge(now=now)}


def keys_expire(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    total = 0
    while True:
        pks = list(
            ApiKey.objects.filter(
                status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED], expires__lte=now
            ).values_list("pk", flat=True)[:BATCH]
        )
        if not pks:
            return total
        total += ApiKey.objects.filter(pk__in=pks, status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED]).update(
            status=ApiKeyStatus.EXPIRED, version=F("version") + 1
        )


def webhook_signing_key() -> bytes:
    """Held by the key store (wrapped by the KEK); a pre-key-store plaintext file is adopted, then removed."""
    return secret("webhook-signing", legacy_file="webhook-signing-key")


def sign_webhook(body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``: receivers check both and reject old t."""
    mac = hmac.new(webhook_signing_key(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _post_webhook(url: str, payload: dict[str, Any]) -> bool:
    import requests

    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "Authserver-Signature": sign_webhook(body, int(time.time()))}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=5, allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("webhook delivery failed", extra={"error": type(exc).__name__})
        return False
    return 200 <= response.status_code < 300


def expiry_warnings_send(*, now: datetime | None = None) -> int:
    """Warn each owner once, ahead of expiry, by signed webhook and e-mail (side effects: fail open)."""
    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.API_KEY_EXPIRY_WARNING_SECONDS)
    warned = 0
    candidates = ApiKey.objects.select_related("client").filter(
        status=ApiKeyStatus.ACTIVE,
        expiry_warned__isnull=True,
        expires__gt=now,
        expires__lte=horizon,
        grace_ends__isnull=True,
    )[:BATCH]
    for key in candidates:
        client = key.client
        payload = {
            "type": "api_key.expiring",
            "key_id": str(key.id),
            "key_hint": key.hint,
            "name": key.name,
            "client_id": client.client_id,
            "expires": key.expires.astimezone(UTC).isoformat(),
        }
        if client.webhook_url:
            _post_webhook(client.webhook_url, payload)
        if client.contact_email:
            try:
                send_mail(
                    subject=f"API key {key.name!r} expires on {key.expires:%Y-%m-%d %H:%M} UTC",
                    message=(
                        f"The API key {key.name} ({key.hint}) of {client.name} expires at "
                        f"{key.expires:%Y-%m-%d %H:%M} UTC. Rotate it before then to avoid an outage."
                    ),
                    from_email=None,
                    recipient_list=[client.contact_email],
                    fail_silently=False,
                )
            except Exception:  # noqa: BLE001 - a side effect: log, the webhook may still have gone out
                log.warning("expiry e-mail failed", extra={"key_id": str(key.id)})
        ApiKey.objects.filter(pk=key.pk, expiry_warned__isnull=True).update(expiry_warned=now)
        warned += 1
    return warned


def usage_roll_up() -> dict[str, int]:
    """Move counted usage into hourly rows and last-used fields (one transaction)."""
    usage, last = drain_usage()
    known = set(ApiKey.objects.filter(pk__in={k for k, _ in usage} | set(last)).values_list("pk", flat=True))
    known_ids = {str(pk) for pk in known}
    with transaction.atomic():
        for (key_id, hour), count in usage.items():
            if key_id not in known_ids:
                continue
            bucket = datetime.fromtimestamp(hour, UTC)
            row, created = ApiKeyUsage.objects.get_or_create(key_id=key_id, hour=bucket, defaults={"requests": count})
            if not created:
                ApiKeyUsage.objects.filter(pk=row.pk).update(requests=F("requests") + count)
            ApiKey.objects.filter(pk=key_id).update(uses=F("uses") + count)
        for key_id, (ts, ip) in last.items():
            if key_id in known_ids:
                ApiKey.objects.filter(pk=key_id).update(
                    last_used=datetime.fromtimestamp(ts, UTC), last_used_ip=ip or None
                )
    counted = {k: n for k, n in usage.items() if k[0] in known_ids}  # keys deleted since are dropped
    return {"keys": len({k for k, _ in counted}), "requests": sum(counted.values())}


def compromise_response_finish(*, response_id: str) -> dict[str, int]:
    """Revoke, in batches, every key and token of the client created up to the decision.

    Resumable: each batch is its own transaction and only touches what is still live, so a
    worker killed midway leaves a consistent state and a rerun picks up where it stopped; a run
    on a finished response changes nothing. Credentials created after the decision are not
    touched.
    """
    response = CompromiseResponse.objects.select_related("client").get(pk=response_id)
    if response.status == CompromiseResponseStatus.DONE:
        return dict(response.counts)
    CompromiseResponse.objects.filter(pk=response.pk).update(
        status=CompromiseResponseStatus.RUNNING, heartbeat=timezone.now()
    )
    client, cutoff = response.client, response.requested
    counts = dict(response.counts or {})
    pause = float(getattr(settings, "COMPROMISE_BATCH_PAUSE", 0))

    def step(name: str, queryset: Any, action: Any) -> None:
        while True:
            pks = list(queryset.values_list("pk", flat=True)[: BATCH_SIZE()])
            if not pks:
                return
            with transaction.atomic():
                done = action(pks)
                counts[name] = counts.get(name, 0) + done
                CompromiseResponse.objects.filter(pk=response.pk).update(heartbeat=timezone.now(), counts=counts)
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
    CompromiseResponse.objects.filter(pk=response.pk).update(
        status=CompromiseResponseStatus.DONE, finished=timezone.now(), counts=counts
    )
    return counts


def BATCH_SIZE() -> int:  # noqa: N802 - read at call time so tests can shrink it
    return int(getattr(settings, "COMPROMISE_BATCH_SIZE", BATCH))


def compromise_responses_stalled(*, stale_after: int = 60) -> list[str]:
    """Responses not finished whose worker went quiet: the reconciliation sweep re-enqueues them."""
    threshold = timezone.now() - timedelta(seconds=stale_after)
    pending = CompromiseResponse.objects.exclude(status=CompromiseResponseStatus.DONE)
    stalled = pending.filter(heartbeat__lte=threshold) | pending.filter(
        heartbeat__isnull=True, requested__lte=threshold
    )
    return [str(pk) for pk in stalled.values_list("pk", flat=True)]
