"""Writes of dynamic client registration (RFC 7591, RFC 7592): each in one transaction with its audit event.

A registered client is an ordinary public :class:`clients.models.Client` marked
``registration_source="dcr"`` (only this module sets that value), with a :class:`Registration`
holding its registration access token's digest. The plaintext ``rat_…`` (and an operator's
``iat_…``) comes back once, as ``(obj, plaintext)``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver import credentials, revocation
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.errors import NotFound, PolicyViolation
from authserver.revocation import feed
from clients.models import GRANT_AUTHORIZATION_CODE, GRANT_TYPES, Client, Scope
from clients.registration.metadata import Metadata, RegistrationRefused
from clients.registration.models import InitialAccessToken, Registration
from clients.services import client_tokens_end

log = logging.getLogger("authserver.clients.registration")

DCR = "dcr"
EXPIRY_BATCH = 500


def registration_refused(*, refused: RegistrationRefused, actor: str = "anonymous",
                         subject: str = "endpoint:register", personal: dict[str, Any] | None = None) -> None:
    """The audit record of a refused registration or management request: the reason, never the body."""
    audit_record(event="client.registration_refused", outcome="failure", actor=actor, subject=subject,
                 details={"error": refused.error, "reason": refused.reason}, personal=personal)


def _details(client: Client, metadata: Metadata) -> dict[str, Any]:
    return {"name": client.name, "redirect_uris": list(metadata.redirect_uris), "scopes": list(metadata.scopes),
            "audiences": list(metadata.audiences), "auth_method_requested": metadata.auth_method_requested}


def _apply(client: Client, metadata: Metadata) -> None:
    client.name = metadata.name
    client.redirect_uris = " ".join(metadata.redirect_uris)
    client.allowed_audiences = list(metadata.audiences)
    client.full_clean(exclude=["client_secret", "user"])


def initial_access_token_check(*, value: str | None, lock: bool = False) -> InitialAccessToken:
    """The usable initial access token ``value`` names, or a refusal (RFC 7591 §3, RFC 6750 §3.1).

    A missing or malformed token costs no query. ``lock``: inside the registering transaction, so the
    use count is decided once however many requests race.
    """
    if value is None or not credentials.is_well_formed(value, credentials.INITIAL_ACCESS_TOKEN):
        why: str | None = "missing" if value is None else "malformed"
        token = None
    else:
        rows = InitialAccessToken.objects.select_for_update() if lock else InitialAccessToken.objects
        token = rows.filter(digest=credentials.digest(value)).first()
        why = "unknown" if token is None else token.refusal(timezone.now())
    if token is None or why is not None:
        raise RegistrationRefused("invalid_token", "a valid initial access token is required", reason=f"iat_{why}",
                                  status=401)
    return token


def _initial_token_consume(*, value: str | None) -> InitialAccessToken | None:
    if settings.DCR != "token":
        return None
    token = initial_access_token_check(value=value, lock=True)
    token.uses += 1
    token.save(update_fields=["uses"])
    return token


def registration_create(*, metadata: Metadata, initial_access_token: str | None = None,
                        personal: dict[str, Any] | None = None) -> tuple[Registration, str]:
    """RFC 7591 §3: register a public authorization-code client. Returns ``(registration, rat_…)``.

    In ``token`` mode the initial access token's use is counted in the same transaction, so a token
    limited to N registrations makes exactly N, however many requests race.
    """
    rat = credentials.mint(credentials.REGISTRATION_ACCESS_TOKEN)
    now = timezone.now()
    client = Client(client_type=Client.CLIENT_PUBLIC, grant_types=[GRANT_AUTHORIZATION_CODE],
                    authorization_grant_type=GRANT_TYPES[GRANT_AUTHORIZATION_CODE], client_secret="",
                    hash_client_secret=False, registration_source=DCR)
    _apply(client, metadata)
    with transaction.atomic():
        iat = _initial_token_consume(value=initial_access_token)
        client.save()
        client.allowed_scopes.set(Scope.objects.filter(name__in=metadata.scopes))
        registration = Registration.objects.create(client=client, token_digest=credentials.digest(rat),
                                                   token_hint=credentials.hint(rat), created_at=now,
                                                   initial_access_token=iat)
        audit_record(event="client.registered", actor=f"iat:{iat.pk}" if iat else "anonymous",
                     subject=f"client:{client.client_id}",
                     details={**_details(client, metadata), "registration_token_hint": registration.token_hint,
                              "initial_access_token": iat.hint if iat else None}, personal=personal)
    log.info("client self-registered", extra={"client_id": client.client_id})
    return registration, rat


def registration_update(*, registration: Registration, metadata: Metadata,
                        personal: dict[str, Any] | None = None) -> tuple[Registration, str]:
    """RFC 7592 §2.2: replace the client's metadata; a new registration access token replaces the old
    one at once (§2.2 allows it: a token seen by whoever read the old answer stops working)."""
    rat = credentials.mint(credentials.REGISTRATION_ACCESS_TOKEN)
    with transaction.atomic():
        locked = Registration.objects.select_for_update().select_related("client").get(pk=registration.pk)
        client = locked.client
        _apply(client, metadata)
        client.save()
        client.allowed_scopes.set(Scope.objects.filter(name__in=metadata.scopes))
        locked.token_digest, locked.token_hint = credentials.digest(rat), credentials.hint(rat)
        locked.save(update_fields=["token_digest", "token_hint"])
        audit_record(event="client.registration_updated", actor=f"client:{client.client_id}",
                     subject=f"client:{client.client_id}",
                     details={**_details(client, metadata), "registration_token_hint": locked.token_hint},
                     personal=personal)
    return locked, rat


def _client_end(client: Client, now: datetime) -> dict[str, int]:
    """Revoke everything the client holds and delete it, in the caller's transaction (keys.deletion's
    order: the cut-off first, so a worker holding a cached credential refuses it from the commit on)."""
    Client.objects.filter(pk=client.pk).update(credentials_revoked_at=now)
    counts = client_tokens_end(client=client, now=now)
    client.delete()
    revocation.invalidate(settle=True, events=[feed.client(client.client_id)])
    return counts


def registration_delete(*, registration: Registration, personal: dict[str, Any] | None = None) -> dict[str, int]:
    """RFC 7592 §2.3: the client deregisters; its tokens stop at once, everywhere."""
    with transaction.atomic():
        locked = Registration.objects.select_for_update().select_related("client").get(pk=registration.pk)
        client_id, name = locked.client.client_id, locked.client.name
        counts = _client_end(locked.client, timezone.now())
        audit_record(event="client.registration_deleted", actor=f"client:{client_id}", subject=f"client:{client_id}",
                     details={"name": name, **counts}, personal=personal)
    return counts


def registrations_expire_unused(*, now: datetime | None = None,
                                actor: str = "job:registration.expire_unused") -> int:
    """Delete self-registered clients that never obtained a token within AUTHSERVER_DCR_UNUSED_SECONDS.

    "Never" is ``first_token_at`` (set at the first token) and, belt and braces, no token row of the
    client left. One audit event per run that deleted something, naming every client.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DCR_UNUSED_SECONDS)
    has_access = get_access_token_model().objects.filter(application=OuterRef("client"))
    has_refresh = get_refresh_token_model().objects.filter(application=OuterRef("client"))
    with transaction.atomic():
        unused = list(Registration.objects.select_for_update(skip_locked=True)
                      .filter(first_token_at__isnull=True, created_at__lte=cutoff)
                      .exclude(Exists(has_access)).exclude(Exists(has_refresh))
                      .select_related("client").order_by("created_at")[:EXPIRY_BATCH])
        if not unused:
            return 0
        ids = [registration.client.client_id for registration in unused]
        Client.objects.filter(pk__in=[registration.client.pk for registration in unused]).delete()
        audit_record(event="client.registration_expired", actor=actor_label(actor), subject="registrations",
                     details={"count": len(ids), "client_ids": ids, "unused_seconds": settings.DCR_UNUSED_SECONDS})
    return len(ids)


def initial_access_token_create(*, expires_in: timedelta | None = None, uses: int | None = None,
                                actor: Any = None) -> tuple[InitialAccessToken, str]:
    """An operator's ``iat_…`` for ``AUTHSERVER_DCR=token``; the plaintext exists only in the return value."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise PolicyViolation("--expires-in must be positive")
    if uses is not None and uses < 1:
        raise PolicyViolation("--uses must be at least 1")
    value = credentials.mint(credentials.INITIAL_ACCESS_TOKEN)
    now = timezone.now()
    with transaction.atomic():
        token = InitialAccessToken.objects.create(
            digest=credentials.digest(value), hint=credentials.hint(value), created_at=now,
            created_by=actor_label(actor), expires_at=now + expires_in if expires_in else None, uses_allowed=uses)
        audit_record(event="registration_token.created", actor=actor_label(actor),
                     subject=f"registration_token:{token.pk}",
                     details={"hint": token.hint, "uses_allowed": uses,
                              "expires_at": token.expires_at.isoformat() if token.expires_at else None})
    return token, value


def initial_access_token_revoke(*, token_id: int, actor: Any = None) -> InitialAccessToken:
    with transaction.atomic():
        token = InitialAccessToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound("no such registration token")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(event="registration_token.revoked", actor=actor_label(actor),
                         subject=f"registration_token:{token.pk}", details={"hint": token.hint, "uses": token.uses})
    return token
