"""What the hot paths call: counting into :mod:`authserver.counters` and reading effective limits.

Every function here is cheap and never raises: an in-memory increment (flushed by a background
thread) or a lookup in the in-process limit cache. No database access: nothing here may add a
query or a write to introspection, verification or the token endpoint.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from authserver import counters
from authserver.anomaly import traffic

log = logging.getLogger("authserver.anomaly")

# Limiter policies that follow a credential's effective limit, and the subject prefix of each.
ADAPTIVE_POLICIES = {"token.client": "client:", "introspect.rs": "rs:"}
_REVOKED_STATES = {"revoked", "suspended"}


def adaptive_limit(name: str, key: str, limit: int, window: int) -> int:
    """The limit of policy ``name`` for ``key``: the static one, tightened by the effective limit.

    Also counts the attempt for ``token.client`` (attempts, not successes: a spike the limiter
    refuses is still seen by the detector).
    """
    prefix = ADAPTIVE_POLICIES.get(name)
    if prefix is None:
        return limit
    try:
        subject = prefix + key
        if prefix == "client:":
            traffic.count_minute(subject)
        per_minute = counters.effective_limit(subject)
        if per_minute is None:
            return limit
        return max(1, min(limit, math.ceil(per_minute * window / 60)))
    except Exception:  # noqa: BLE001 - never in the way of a request
        log.warning("adaptive limit unavailable", exc_info=True)
        return limit


def key_verified(row: dict[str, Any], key_id: str, client_ip: str | None) -> dict[str, Any]:
    """Count a verification of key ``key_id`` (and its network); the row with its effective limit applied.

    The cached row is never modified: a copy carries the tighter of the key's own rate limit and
    its effective per-minute limit.
    """
    try:
        from authserver.anomaly.detection import key_network

        network = key_network(client_ip) if client_ip else None
        traffic.count_minute(f"key:{key_id}", pair=(key_id, network) if network else None)
        per_minute = counters.effective_limit(f"key:{key_id}")
        if per_minute is None:
            return row
        own, period = row.get("rate_limit"), row.get("rate_limit_period")
        if own and period and own * 60 / period <= per_minute:
            return row
        return {**row, "rate_limit": per_minute, "rate_limit_period": 60}
    except Exception:  # noqa: BLE001
        log.warning("key traffic hook failed", exc_info=True)
        return row


def key_refused(row: dict[str, Any]) -> None:
    """A key row that exists but can't be used was presented: count it if it was revoked or suspended."""
    try:
        cutoff = row.get("client__credentials_revoked_at")
        if row.get("status") in _REVOKED_STATES or (cutoff is not None and row["created"] <= cutoff):
            traffic.count_minute(f"revoked:key:{row['id']}")
    except Exception:  # noqa: BLE001
        log.warning("revoked-use hook failed", exc_info=True)


def token_introspected(client_id: str) -> None:
    """A live access token of ``client_id`` was introspected."""
    traffic.count_minute(f"client:{client_id}")


def introspection_answered(rs_client_id: str, answer: dict[str, Any], address: str | None) -> None:
    """Inactive answers per resource server (token fishing) and per presenting address (invalid tokens).

    ``address`` is the end caller's as the resource server reports it (``client_ip``), else the
    resource server's own.
    """
    if answer.get("active") or answer.get("rate_limited"):
        return
    traffic.count_minute(f"fishing:{rs_client_id}")
    if address:
        traffic.count_minute(f"invalid:{_address_unit(address)}")


def client_auth_failed(address: str | None) -> None:
    """A failed client authentication (token endpoint, introspection) from ``address``."""
    traffic.count_minute(f"authfail:{_address_unit(address)}")


def _address_unit(address: str | None) -> str:
    from authserver.ratelimit.limiter import client_network

    return client_network(address)
