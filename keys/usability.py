"""When an API key can be used: one rule for verification, exchange, rotation, the admin and anomaly counting."""

from __future__ import annotations

from datetime import datetime

from keys.models import ApiKeyStatus


def api_key_end(*, expires: datetime, grace_ends: datetime | None) -> datetime:
    """The key's expiry, or the end of its rotation grace if that comes first."""
    return expires if grace_ends is None else min(expires, grace_ends)


def api_key_usable_until(*, status: str, expires: datetime, grace_ends: datetime | None, created: datetime,
                         client_cutoff: datetime | None, now: datetime) -> datetime | None:
    """When the key stops being usable, or None if it is not usable now: active, not expired, not
    past its rotation grace, and created after its client's compromise cut-off."""
    if status != ApiKeyStatus.ACTIVE:
        return None
    if client_cutoff is not None and created <= client_cutoff:
        return None
    until = api_key_end(expires=expires, grace_ends=grace_ends)
    return until if until > now else None
