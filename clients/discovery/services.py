"""Writes on discovery capabilities: issue (and so rotate) and revoke, each audited in its transaction."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from authserver import credentials
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from clients.discovery.models import DiscoveryCapability
from clients.models import Client

log = logging.getLogger("authserver.clients")

URL_PATH = "/d/"


def discovery_url(value: str) -> str:
    """The absolute discovery URL of capability ``value`` (the issuer's origin)."""
    return settings.ISSUER.rstrip("/") + URL_PATH + value


def discovery_capability_rotate(*, client: Client, actor: Any = None) -> tuple[DiscoveryCapability, str]:
    """A new discovery capability for ``client``; the current one, if any, stops at once.

    Returns ``(row, plaintext)``: the plaintext exists only here (show it once). The first one of a
    client is a rotation from nothing, audited all the same (``client.discovery_url_rotated``).
    """
    plaintext = credentials.mint(credentials.DISCOVERY_CAPABILITY)
    now = timezone.now()
    with transaction.atomic():
        Client.objects.select_for_update().filter(pk=client.pk).first()  # one rotation at a time per client
        previous = list(DiscoveryCapability.objects.filter(client=client, revoked_at__isnull=True)
                        .values_list("hint", flat=True))
        DiscoveryCapability.objects.filter(client=client, revoked_at__isnull=True).update(revoked_at=now)
        row = DiscoveryCapability.objects.create(client=client, digest=credentials.digest(plaintext),
                                                 hint=credentials.hint(plaintext), created_at=now)
        audit_record(event="client.discovery_url_rotated", actor=actor_label(actor),
                     subject=f"client:{client.client_id}", details={"hint": row.hint, "previous": previous})
    log.info("discovery URL issued", extra={"client_id": client.client_id, "hint": row.hint})
    return row, plaintext


def discovery_capability_revoke(*, client: Client, actor: Any = None) -> int:
    """Revoke ``client``'s live discovery capability (idempotent); returns how many were live."""
    with transaction.atomic():
        live = list(DiscoveryCapability.objects.select_for_update().filter(client=client, revoked_at__isnull=True))
        DiscoveryCapability.objects.filter(pk__in=[row.pk for row in live]).update(revoked_at=timezone.now())
        audit_record(event="client.discovery_url_revoked", actor=actor_label(actor),
                     subject=f"client:{client.client_id}", details={"revoked": [row.hint for row in live]})
    return len(live)


def issued_at_creation(client: Client) -> bool:
    """Which new clients get a discovery URL at creation: confidential clients and resource servers
    (they run server-side, where a capability URL can be kept like a configuration secret). Public
    clients (browser and native apps) get one only on demand (docs/endpoints.md)."""
    return bool(client.is_resource_server or client.client_type == Client.CLIENT_CONFIDENTIAL)


def discovery_url_at_creation(*, client: Client, actor: Any = None) -> str | None:
    """A new client's discovery URL, to show once next to its secret, if it gets one at creation."""
    if not issued_at_creation(client):
        return None
    return discovery_url(discovery_capability_rotate(client=client, actor=actor)[1])
