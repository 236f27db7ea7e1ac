"""Writes of the device authorization grant (RFC 8628): start, decide, poll.

``device_authorization_start`` is the device authorization endpoint's work (§3.1-§3.2),
``device_authorization_decide`` the user's Allow / Deny on the user-code page (§3.3, audited),
``device_code_poll`` the token endpoint's question "what is this device code's status?" (§3.4-§3.5),
asked by the validator (authserver.oauth.device.grant). Each returns domain values, never HTTP.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from authserver import credentials
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.oauth.device import user_codes
from authserver.oauth.device.models import AUTHORIZED, DENIED, PENDING, DeviceAuthorization
from authserver.oauth.usability import before_client_cutoff

# RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this and all subsequent requests".
SLOW_DOWN_STEP = 5
# The statuses ``device_code_poll`` answers: oauthlib's DeviceCodeGrant maps each to its §3.5 error.
POLL_AUTHORIZED = "authorized"
POLL_PENDING = "authorization_pending"
POLL_SLOW_DOWN = "slow_down"
POLL_EXPIRED = "expired_token"
POLL_DENIED = "access_denied"


def device_authorization_start(
    *, client: Any, scopes: list[str], resources: list[str], now: datetime | None = None
) -> tuple[DeviceAuthorization, str, str]:
    """A new pending authorization; returns ``(row, device_code, user_code)``, the codes only here.

    The caller has authenticated the client and checked that it is registered for the device grant
    and may ask for ``scopes`` and ``resources``.
    """
    now = now or timezone.now()
    device_code = credentials.mint(credentials.DEVICE_CODE)
    for _ in range(5):
        # 20**8 user codes and a few minutes of life: a clash with a live one is rare, but possible.
        user_code = user_codes.generate()
        try:
            with transaction.atomic():
                row = DeviceAuthorization.objects.create(
                    device_code=device_code, hint=credentials.hint(device_code), client=client,
                    user_code_digest=user_codes.digest(user_codes.normalise(user_code) or ""),
                    scope=" ".join(scopes), resource=list(resources), interval=settings.DEVICE_INTERVAL_SECONDS,
                    created=now, expires=now + timedelta(seconds=settings.DEVICE_CODE_SECONDS))
            return row, device_code, user_code
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a unique user code")


def device_authorization_pending(*, user_code: object, now: datetime | None = None) -> DeviceAuthorization | None:
    """The live, undecided authorization a typed user code names, or None (malformed, unknown,
    expired, already decided: the page says the same for all, §5.1)."""
    normalised = user_codes.normalise(user_code)
    if normalised is None:
        return None
    return (DeviceAuthorization.objects.select_related("client")
            .filter(user_code_digest=user_codes.digest(normalised), status=PENDING, expires__gt=now or timezone.now())
            .first())


def device_authorization_decide(
    *, authorization: DeviceAuthorization, allow: bool, actor: Any, personal: dict[str, Any] | None = None
) -> bool:
    """Record the user's decision (§3.3); False if the authorization was no longer pending (decided
    in another tab, or expired meanwhile). The decision and its audit event commit together."""
    now = timezone.now()
    with transaction.atomic():
        decided = DeviceAuthorization.objects.filter(
            pk=authorization.pk, status=PENDING, expires__gt=now
        ).update(status=AUTHORIZED if allow else DENIED, user=actor, decided=now)
        if not decided:
            return False
        audit_record(event="device.authorized" if allow else "device.denied", actor=actor_label(actor),
                     subject=f"client:{authorization.client.client_id}",
                     details={"device_code": authorization.hint, "scope": authorization.scope,
                              "aud": list(authorization.resource)},
                     personal=personal)
    return True


def device_code_poll(*, client: Any, device_code: str, now: datetime | None = None
                     ) -> tuple[str | None, DeviceAuthorization | None]:
    """The §3.5 status of ``device_code`` for ``client``, redeeming it if it was authorized.

    ``(None, None)`` means invalid_grant: malformed, unknown, another client's (RFC 6749 §5.2), or
    already redeemed (a device code is single-use: a replay gets nothing). Every poll is recorded;
    one sooner than the interval after the previous answers ``slow_down`` and adds 5 s to it.
    """
    if not credentials.is_well_formed(device_code, credentials.DEVICE_CODE):
        return None, None
    now = now or timezone.now()
    row = (DeviceAuthorization.objects.select_for_update(of=("self",)).select_related("user")
           .filter(device_code=device_code, client=client, redeemed__isnull=True).first())
    if row is None or before_client_cutoff(created=row.created, client_cutoff=client.credentials_revoked_at):
        return None, None
    if row.expires <= now:
        return POLL_EXPIRED, row
    if row.status == DENIED:
        return POLL_DENIED, row
    if row.status == AUTHORIZED:
        family = uuid.uuid4()
        # The conditional UPDATE is the single point of redemption: of two concurrent polls exactly
        # one changes the row (SQLite takes no row lock; PostgreSQL also holds the one above).
        won = DeviceAuthorization.objects.filter(pk=row.pk, redeemed__isnull=True).update(
            redeemed=now, last_polled=now, token_family=family)
        if not won:
            return None, None
        row.token_family = family
        return POLL_AUTHORIZED, row
    too_fast = row.last_polled is not None and (now - row.last_polled).total_seconds() < row.interval
    interval = row.interval + SLOW_DOWN_STEP if too_fast else row.interval
    DeviceAuthorization.objects.filter(pk=row.pk).update(last_polled=now, interval=interval)
    return (POLL_SLOW_DOWN if too_fast else POLL_PENDING), row
