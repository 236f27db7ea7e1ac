"""When an access token can be used: one rule for introspection, the management API and the admin."""

from __future__ import annotations

from datetime import datetime


def access_token_usable(*, expires: datetime, created: datetime, client_cutoff: datetime | None,
                        now: datetime) -> bool:
    """Not expired, and not issued at or before its client's compromise cut-off."""
    return expires > now and (client_cutoff is None or created > client_cutoff)
