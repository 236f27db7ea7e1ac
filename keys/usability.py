"""When an API key may be used: one rule for verification, exchange, rotation, the admin and jobs.

Pure functions over a key's fields (no database, no clock of their own). A key is usable while it
is active, before its end (expiry, or the end of its rotation grace if that comes first) and not
caught by its client's compromise response. The stored status lags behind the first two: the jobs
record expiries and grace ends later, verification never waits for them.
"""

from __future__ import annotations

from datetime import datetime

from authserver.oauth.usability import before_client_cutoff

ACTIVE = "active"  # keys.models.ApiKeyStatus.ACTIVE (kept import-free: the model imports this module)


def api_key_end(*, expires: datetime, grace_ends: datetime | None) -> datetime:
    """The key's expiry, or the end of its rotation grace if that comes first."""
    return expires if grace_ends is None else min(expires, grace_ends)


def api_key_usable_until(*, status: str, expires: datetime, grace_ends: datetime | None, created: datetime,
                         client_cutoff: datetime | None, now: datetime) -> datetime | None:
    """When the key stops being usable, or None if it is not usable at ``now``."""
    if status != ACTIVE or before_client_cutoff(created=created, client_cutoff=client_cutoff):
        return None
    until = api_key_end(expires=expires, grace_ends=grace_ends)
    return until if until > now else None
