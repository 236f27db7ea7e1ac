"""Resolving a Client ID Metadata Document to a Client, with its audit event.

A ``client_id`` that is an https URL (with ``AUTHSERVER_CIMD=on``) is looked up like any client;
if there is no row yet, or the row's document is past its max age (``cimd_expires_at``), the
document is fetched (authserver.oauth.cimd.fetcher) and checked (.documents), and the row created or
updated: public, authorization code only, ``registration_source="cimd"``. Any failure refuses the
client exactly like an unknown one (no redirect, RFC 6749 §4.1.2.1), and never falls back to the
last good document: past its max age a document is not believed (fail closed; DOT's resolver
keeps the stale row, which is why it is not used).

A refused URL is not fetched again for ``CIMD_FAILURE_BACKOFF_SECONDS`` (a flood of requests
naming it costs one fetch), and at most ``CIMD_MAX_CONCURRENT_FETCHES`` fetches run at once per
process. The per-host limit (``cimd.fetch``) is policy, applied from above through ``admit``
(authserver.oauth.limits).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from authserver.audit.services import audit_record
from authserver.oauth.cimd import fetcher
from authserver.oauth.cimd.documents import client_metadata
from authserver.oauth.cimd.fetcher import FetchRefused
from clients.models import GRANT_AUTHORIZATION_CODE, GRANT_TYPES, Client, Scope
from clients.redirects import redirect_uri_matches

log = logging.getLogger("authserver.oauth.cimd")

CIMD = Client.RegistrationSource.CIMD
ACTOR = "cimd"
_BACKOFF = "cimd:refused:"
_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def enabled() -> bool:
    return bool(settings.CIMD == "on")


MAX_URL_LENGTH = fetcher.MAX_URL_LENGTH
host_of = fetcher.host_of


def is_document_url(client_id: Any) -> bool:
    """Looks like a metadata document URL (checked fully before any fetch)."""
    return isinstance(client_id, str) and client_id[:8].lower() == "https://"


def expired(client: Client) -> bool:
    return client.cimd_expires_at is None or timezone.now() >= client.cimd_expires_at


def _slot() -> threading.BoundedSemaphore:
    global _slots
    size = max(1, int(oauth2_settings.CIMD_MAX_CONCURRENT_FETCHES or 1))
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def _backoff_key(url: str) -> str:
    return _BACKOFF + hashlib.sha256(url.encode()).hexdigest()


def _backed_off(url: str) -> bool:
    try:
        return bool(cache.get(_backoff_key(url)))
    except Exception:  # the backoff only saves work; an unreachable cache fetches instead
        return False


def _back_off(url: str) -> None:
    try:
        cache.set(_backoff_key(url), True, int(oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS))
    except Exception:  # noqa: S110 - see _backed_off
        pass


def _refuse(url: str, reason: str, personal: dict[str, Any], *, back_off: bool = True) -> None:
    log.info("client metadata document refused", extra={"reason": reason})
    if back_off:
        _back_off(url)
    with transaction.atomic():
        audit_record(event="client.cimd_refused", outcome="failure", actor=ACTOR, subject=f"client:{url}",
                     details={"reason": reason, "host": fetcher.host_of(url), "url": url}, personal=personal)


def cimd_client_resolve(*, client_id: str, redirect_uri: str | None, admit: Callable[[str], None],
                        personal: dict[str, Any]) -> Client | None:
    """The Client for the document at ``client_id``, fetched now, or None (refused; audited).

    ``redirect_uri`` is the one the authorization request names, if any: a document that does not
    list it is refused before anything is stored. ``admit(host)`` runs before the fetch and may
    raise (the per-host limit).
    """
    if not enabled() or not is_document_url(client_id) or _backed_off(client_id):
        return None
    try:
        parts = fetcher.parse_url(client_id)
    except FetchRefused as refused:
        _refuse(client_id, refused.reason, personal)
        return None
    admit(str(parts.hostname))
    slot = _slot()
    if not slot.acquire(blocking=False):
        log.warning("client metadata document not fetched: too many fetches at once")
        return None
    try:
        fetched = fetcher.fetch(client_id)
        metadata = client_metadata(fetched.document, url=client_id)
    except FetchRefused as refused:
        _refuse(client_id, refused.reason, personal)
        return None
    finally:
        slot.release()
    if redirect_uri is not None and not redirect_uri_matches(redirect_uri, metadata.redirect_uris):
        # Not the document's fault: the URL is not backed off (one bad request must not lock a
        # good client out), and nothing is stored.
        _refuse(client_id, "redirect_uri_not_listed", personal, back_off=False)
        return None
    try:
        return _store(client_id, metadata, fetched.max_age, personal)
    except FetchRefused as refused:
        _refuse(client_id, refused.reason, personal)
        return None


def _store(url: str, metadata: Any, max_age: int, personal: dict[str, Any]) -> Client:
    with transaction.atomic():
        client = Client.objects.select_for_update().filter(client_id=url).first()
        created = client is None
        if client is None:
            client = Client(client_id=url, registration_source=CIMD, client_type=Client.CLIENT_PUBLIC,
                            client_secret="", hash_client_secret=False)
        elif client.registration_source != CIMD:
            raise FetchRefused("client_id_taken")  # a client registered by hand is never taken over
        client.name = metadata.name
        client.redirect_uris = " ".join(metadata.redirect_uris)
        client.grant_types = [GRANT_AUTHORIZATION_CODE]
        client.authorization_grant_type = GRANT_TYPES[GRANT_AUTHORIZATION_CODE]
        client.allowed_audiences = metadata.audiences
        client.cimd_expires_at = timezone.now() + timedelta(seconds=max_age)
        try:
            client.full_clean(exclude=["client_secret", "user"], validate_unique=False)
        except ValidationError:
            raise FetchRefused("metadata_invalid") from None
        try:
            with transaction.atomic():
                client.save()
        except IntegrityError:
            # Two first sights of one URL at once: the other request's row wins, if it is a document's.
            winner = Client.objects.filter(client_id=url, registration_source=CIMD).first()
            if winner is None:
                raise FetchRefused("client_id_taken") from None
            return winner
        scopes = list(Scope.objects.filter(name__in=metadata.scopes))
        client.allowed_scopes.set(scopes)
        audit_record(event="client.cimd_resolved", actor=ACTOR, subject=f"client:{url}", personal=personal,
                     details={"created": created, "host": fetcher.host_of(url), "url": url, "name": client.name,
                              "redirect_uris": metadata.redirect_uris, "scopes": sorted(s.name for s in scopes),
                              "audiences": metadata.audiences, "max_age": max_age})
    return client
