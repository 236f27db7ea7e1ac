"""Deleting clients, scopes and API keys: each takes its credentials out of service first.

Deletion lives here, in ``keys`` (the top domain app), because a client's or a scope's credentials
include API keys and this is the lowest app that knows them. Each delete is one transaction and
writes one audit event (``client.deleted``, ``scope.deleted``, ``api_key.deleted``) that counts what
was revoked with it; the revocation fans out to every worker (``revocation.invalidate(settle=True)``)
before the call returns, so introspection stops accepting the credentials at once.

Deletes are hard: the row is gone and the audit trail keeps the record. The soft form of deleting
an API key is revoking it (``apikey revoke``: the key stays listed, marked revoked), the way
Unkey's default delete keeps a key for analytics and its ``permanent`` delete removes it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver import revocation
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.errors import Conflict
from authserver.revocation import feed
from clients.models import Client, Scope
from clients.services import client_tokens_end
from keys.models import ApiKey, ApiKeyStatus

log = logging.getLogger("authserver.keys")

LIVE_KEY_STATES = (ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED)


class ScopeInUse(Conflict):
    """A scope still granted to clients or carried by live credentials; ``usage`` counts them."""

    def __init__(self, usage: dict[str, int]) -> None:
        super().__init__("scope in use: give --force to ungrant it and revoke what carries it")
        self.usage = usage


def _revoke_keys(keys: QuerySet[ApiKey], now: Any) -> int:
    """Mark every live key of ``keys`` revoked and delete the tokens exchanged for them (RFC 8693)."""
    pks = list(keys.filter(status__in=LIVE_KEY_STATES).values_list("pk", flat=True))
    ApiKey.objects.filter(pk__in=pks).update(status=ApiKeyStatus.REVOKED, revoked=now, version=F("version") + 1)
    get_access_token_model().objects.filter(source_api_key__in=pks).delete()
    return len(pks)


def client_delete(*, client: Client, actor: Any = None) -> dict[str, int]:
    """Revoke every key, token and code of ``client``, then delete it; returns what was revoked.

    The compromise cut-off is set first, in the same transaction, so a worker that still holds
    the client's credentials in a cache refuses them from the commit on.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = Client.objects.select_for_update().get(pk=client.pk)
        Client.objects.filter(pk=locked.pk).update(credentials_revoked_at=now)
        counts = {"api_keys": _revoke_keys(ApiKey.objects.filter(client=locked), now),
                  **client_tokens_end(client=locked, now=now)}
        client_id, name = locked.client_id, locked.name
        locked.delete()
        # Every worker forgets cached answers before we return; resource servers all of the client's.
        revocation.invalidate(settle=True, events=[feed.client(client_id)])
        audit_record(event="client.deleted", actor=actor_label(actor), subject=f"client:{client_id}",
                     details={"name": name, "secret_hint": locked.client_secret_hint, **counts})
    log.info("client deleted", extra={"client_id": client_id, "actor": actor_label(actor)})
    return counts


def _carries(field: str, name: str) -> Q:
    """A space-separated scope field that holds ``name`` as one of its words."""
    return (Q(**{field: name}) | Q(**{f"{field}__startswith": f"{name} "}) | Q(**{f"{field}__endswith": f" {name}"})
            | Q(**{f"{field}__contains": f" {name} "}))


def scope_usage(*, scope: Scope) -> dict[str, int]:
    """Who still holds ``scope``: clients allowed it, live tokens, pending codes and live API keys carrying it."""
    now = timezone.now()
    carried = _carries("scope", scope.name)
    return {
        "clients": Client.objects.filter(allowed_scopes=scope).count(),
        "access_tokens": get_access_token_model().objects.filter(carried, expires__gt=now).count(),
        "refresh_tokens": get_refresh_token_model().objects.filter(
            revoked__isnull=True, access_token__isnull=False).filter(_carries("access_token__scope", scope.name))
        .count(),
        "authorization_codes": get_grant_model().objects.filter(carried, used__isnull=True, expires__gt=now).count(),
        "api_keys": ApiKey.objects.filter(carried, status__in=LIVE_KEY_STATES).count(),
    }


def scope_delete(*, scope: Scope, force: bool = False, actor: Any = None) -> dict[str, int]:
    """Delete ``scope``; refused (:class:`ScopeInUse`) while anything holds it, unless ``force``.

    ``force`` fails closed: it ungrants the scope from every client and revokes every token, code
    and API key that carries it, so nothing keeps a permission that no longer exists.
    """
    with transaction.atomic():
        locked = Scope.objects.select_for_update().get(pk=scope.pk)
        usage = scope_usage(scope=locked)
        if any(usage.values()) and not force:
            raise ScopeInUse(usage)
        now = timezone.now()
        carried = _carries("scope", locked.name)
        access = get_access_token_model().objects.filter(carried)
        # A refresh token's scope is its access token's: revoke it before that token goes.
        refresh = get_refresh_token_model().objects.filter(revoked__isnull=True, access_token__in=access).update(
            revoked=now, updated=now, access_token=None)
        revoked = {"clients_ungranted": usage["clients"], "access_tokens": access.delete()[0],
                   "refresh_tokens": refresh,
                   "authorization_codes": get_grant_model().objects.filter(carried, used__isnull=True).update(
                       used=now, expires=now),
                   "api_keys": _revoke_keys(ApiKey.objects.filter(carried), now)}
        locked.delete()  # and with it every client's grant of it
        revocation.invalidate(settle=True)  # a generation event: every answer carrying the scope goes
        audit_record(event="scope.deleted", actor=actor_label(actor), subject=f"scope:{locked.name}",
                     details={"description": locked.description, "forced": force, **revoked})
    return revoked


def api_key_delete(*, key: ApiKey, actor: Any = None) -> dict[str, Any]:
    """Revoke ``key`` (if it is live) and delete it; the audit event keeps its name and hint."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().select_related("client").get(pk=key.pk)
        was = locked.status
        tokens = get_access_token_model().objects.filter(source_api_key=locked.pk)
        dying = list(tokens.values_list("token_checksum", flat=True))
        if was in LIVE_KEY_STATES:
            _revoke_keys(ApiKey.objects.filter(pk=locked.pk), timezone.now())
        exchanged, _ = tokens.delete()
        key_id = str(locked.id)
        locked.delete()
        # Introspection refuses it from now on, in every worker; resource servers drop it and its tokens.
        revocation.invalidate(settle=True, events=[*feed.digests(feed.API_KEY, [locked.digest]),
                                                   *feed.digests(feed.ACCESS_TOKEN, dying)])
        details = {"name": locked.name, "hint": locked.hint, "client_id": locked.client.client_id,
                   "status_before": was}
        audit_record(event="api_key.deleted", actor=actor_label(actor), subject=f"key:{key_id}", details=details)
    return {"id": key_id, **details}
