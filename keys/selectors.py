"""Reading API keys on the hot paths: the usable row for a presented key.

Order matters for cost and for what leaks: the length first (no I/O), then the in-process caches
(authserver.revocation), then the full format check and at most one indexed query. The caches
only ever hold digests of well-formed keys.
"""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from authserver import credentials, events, revocation
from authserver.db import PreparedLookup
from authserver.oauth.usability import before_client_cutoff
from authserver.revocation import RequestView
from keys.models import ApiKey, ApiKeyStatus
from keys.usability import api_key_usable_until

FIELDS = (
    "id", "status", "expires", "grace_ends", "created", "scope", "audiences", "allowed_ips", "rate_limit",
    "rate_limit_period", "quota", "uses", "client__client_id", "client__credentials_revoked_at",
)
_REFUSED_STATES = {ApiKeyStatus.REVOKED, ApiKeyStatus.SUSPENDED}

API_KEY = PreparedLookup(lambda digest: ApiKey.objects.filter(digest=digest).values(*FIELDS))


def usable_until(row: dict[str, Any]) -> Any:
    return api_key_usable_until(status=row["status"], expires=row["expires"], grace_ends=row["grace_ends"],
                                created=row["created"], client_cutoff=row["client__credentials_revoked_at"],
                                now=timezone.now())


def _refused(row: dict[str, Any]) -> None:
    """A key that exists but can't be used was presented: telemetry if it was revoked or cut off."""
    if row["status"] in _REFUSED_STATES or before_client_cutoff(created=row["created"],
                                                                client_cutoff=row["client__credentials_revoked_at"]):
        events.api_key_refused.emit(str(row["id"]))


def api_key_lookup(*, key: str, view: RequestView | None = None) -> dict[str, Any] | None:
    """The usable key row for ``key``, from the cache or one query; None if unknown or unusable.

    ``view`` is the request's :func:`authserver.revocation.request_view` (read now if not given).
    """
    prefix = credentials.api_key_prefix()
    if len(key) != len(prefix) + 1 + credentials.BODY_LENGTH:
        return None
    view = view or revocation.request_view()
    digest = credentials.digest(key)
    row = view.get(revocation.api_keys, digest)
    if row is not None:  # usable: an entry lives no longer than its key, and status changes invalidate
        return row  # type: ignore[no-any-return]
    refused = view.get(revocation.unusable, digest)
    if refused is not None:
        if refused is not True:
            _refused(refused)  # still counted, cached or not
        return None
    if not credentials.is_well_formed(key, prefix):
        return None
    generation = revocation.current()
    row = API_KEY.one(digest)
    until = usable_until(row) if row is not None else None
    if row is None or until is None:
        if row is not None:
            _refused(row)
        revocation.unusable.put(digest, row or True, expires_at=time.time() + revocation.TTL, generation=generation)
        return None
    revocation.api_keys.put(digest, row, expires_at=until.timestamp(), generation=generation)
    return row
