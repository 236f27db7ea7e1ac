"""Writes on a resource server's rotating paths (clients.resource_paths): its settings, its key.

Every change, and every time the key is handed out, is one audit event in the same transaction;
the details name what changed and the key's version, never the key.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from clients.models import Client
from clients.resource_paths import models as resource_paths
from clients.resource_paths.models import ResourceServerPaths
from clients.services import ClientError

log = logging.getLogger("authserver.clients")

_UNSET: Any = object()


def _locked(client: Client) -> ResourceServerPaths:
    if not client.is_resource_server:
        raise ClientError("rotating paths are for resource servers (register the client with an audience)")
    row, _ = ResourceServerPaths.objects.select_for_update().get_or_create(client=client)
    return row


def resource_paths_update(*, client: Client, rotating_paths: bool | None = None, public_url: str | None = None,
                          per_client_aliases: bool | None = None, window_seconds: int | None = _UNSET,
                          actor: Any = None) -> ResourceServerPaths:
    """Change a resource server's rotating-path settings (None: leave as is; ``window_seconds``
    None: the server default). Turning rotating paths on needs a public URL."""
    if window_seconds is not _UNSET and window_seconds is not None and window_seconds < 1:
        raise ClientError("the path window is at least 1 second")
    with transaction.atomic():
        row = _locked(client)
        before = _settings_of(row)
        if rotating_paths is not None:
            row.rotating_paths = rotating_paths
        if public_url is not None:
            row.public_url = public_url
        if per_client_aliases is not None:
            row.per_client_aliases = per_client_aliases
        if window_seconds is not _UNSET:
            row.window_seconds = window_seconds
        row.full_clean(exclude=["client", "path_key"])
        row.save()
        changed = {name: value for name, value in _settings_of(row).items() if before[name] != value}
        if changed:
            audit_record(event="resource_server.paths_updated", actor=actor_label(actor),
                         subject=f"client:{client.client_id}", details={"changed": changed})
    if changed:
        log.info("resource server paths updated", extra={"client_id": client.client_id, "changed": sorted(changed),
                                                         "actor": actor_label(actor)})
    return row


def _settings_of(row: ResourceServerPaths) -> dict[str, Any]:
    return {"rotating_paths": row.rotating_paths, "public_url": row.public_url,
            "per_client_aliases": row.per_client_aliases, "window_seconds": row.window_seconds}


def path_key_rotate(*, client: Client, actor: Any = None) -> ResourceServerPaths:
    """A new path key: every alias changes at once (the old key's aliases stop now, no overlap).

    The resource server learns the new key at its next ``POST /oauth/path-key`` (the kit refetches
    it when an alias does not match, docs/rotating-paths.md)."""
    with transaction.atomic():
        row = _locked(client)
        row.path_key = resource_paths.mint_path_key()
        row.key_version += 1
        row.key_rotated = timezone.now()
        row.save(update_fields=["path_key", "key_version", "key_rotated", "updated"])
        audit_record(event="resource_server.path_key_rotated", actor=actor_label(actor),
                     subject=f"client:{client.client_id}", details={"key_version": row.key_version})
    log.info("resource server path key rotated", extra={"client_id": client.client_id,
                                                        "key_version": row.key_version, "actor": actor_label(actor)})
    return row


def path_key_fetch(*, client_pk: Any, client_id: str) -> ResourceServerPaths | None:
    """The settings and key a resource server fetches for itself (``POST /oauth/path-key``), or
    None if rotating paths are off. Handing the key out is recorded (the actor is the resource
    server); an answer that carries no key is not."""
    with transaction.atomic():
        row = ResourceServerPaths.objects.filter(client_id=client_pk, rotating_paths=True).first()
        if row is None:
            return None
        audit_record(event="resource_server.path_key_fetched", actor=f"client:{client_id}",
                     subject=f"client:{client_id}", details={"key_version": row.key_version})
    return row


def path_key_refusal_record(*, presented_client_id: str | None, network: str | None) -> None:
    """A failed authentication at ``POST /oauth/path-key``: the key is what a scan would want, so
    each refusal answered 401 is audited (the failure budgets bound how many a network can cause)."""
    # The presented id is the caller's text: named only if it could be a client id (PostgreSQL text
    # can't hold a NUL, and a control character has no place in the trail).
    presented = presented_client_id or ""
    named = 0 < len(presented) <= 100 and presented.isprintable()
    audit_record(event="resource_server.path_key_refused", outcome="failure", actor="anonymous",
                 subject=f"client:{presented}" if named else "path_key",
                 personal={"network": network} if network else None)
