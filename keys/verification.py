"""API-key verification: the introspection answer for a key (RFC 7662 shape).

Registered with introspection for the key prefix (keys.apps). Every failure answers exactly
``{"active": false}``: unknown, revoked, expired, suspended, out-of-quota, foreign-audience and
wrong-address keys are indistinguishable. Verification consumes quota and rate-limit windows and
records use in the counter store, never in the database (a job rolls usage up); a key's learned
effective limit is data the anomaly job published (authserver.counters), and the traffic it
learns from is emitted (authserver.events).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from authserver import counters, events
from authserver.revocation import RequestView
from keys import usage
from keys.policy import ip_allowed
from keys.selectors import api_key_lookup
from keys.usability import api_key_end

INACTIVE: dict[str, Any] = {"active": False}


def _with_effective_limit(row: dict[str, Any], key_id: str) -> dict[str, Any]:
    """The row with the limit that applies: the key's own rate limit (set by the operator) wins over
    a learned one; a binding one (an anomaly's action, a pin) tightens it (counters.applicable_limit).

    The cached row is never modified: a copy carries the tighter limit.
    """
    own, period = row.get("rate_limit"), row.get("rate_limit_period")
    per_minute = counters.applicable_limit(counters.effective_limit(f"key:{key_id}"), operator_set=bool(own and period))
    if per_minute is None:
        return row
    if own and period and own * 60 / period <= per_minute:
        return row
    return {**row, "rate_limit": per_minute, "rate_limit_period": 60}


def api_key_verify(*, key: str, audience: str, client_ip: str | None,
                   view: RequestView | None = None) -> dict[str, Any]:
    """Introspection of an API key by the resource server ``audience``.

    Raises ``authserver.counters.CountersUnavailable`` when a key with a quota or rate limit can't be counted:
    the endpoint answers 503 rather than guess.
    """
    row = api_key_lookup(key=key, view=view)
    if row is None or audience not in row["audiences"] or not ip_allowed(client_ip, row["allowed_ips"]):
        return dict(INACTIVE)
    key_id = str(row["id"])
    events.api_key_verified.emit((key_id, client_ip))
    own = row
    row = _with_effective_limit(row, key_id)
    try:
        limits = usage.consume(key_id, quota=row["quota"], rate_limit=row["rate_limit"],
                               period=row["rate_limit_period"])
    except counters.CountersUnavailable:
        # Limited only by a learned limit: with the store unreachable there is none (README,
        # "Rate limits"); the key's own limits decide, and it has none. Its own quota or rate
        # limit can't be counted: fail closed (503).
        if own["quota"] is not None or own["rate_limit"] is not None:
            raise
        row, limits = own, usage.Limits(None, None, None)
    if limits.out_of_quota:
        return dict(INACTIVE)
    if limits.rate_limited:
        # The key is good for this caller but over its own limit: say so, so the AI API can answer
        # 429 with Retry-After to its client. Still not active: a resource server that ignores the
        # extra fields denies the request (fail closed).
        retry_after = max(1, int((limits.rate_limit_reset or 0) - timezone.now().timestamp()))
        return {"active": False, "rate_limited": True, "retry_after": retry_after,
                "rate_limit": {"limit": row["rate_limit"], "remaining": 0, "reset": limits.rate_limit_reset}}
    usage.record_use(key_id, client_ip)
    until = api_key_end(expires=row["expires"], grace_ends=row["grace_ends"])  # api_key_lookup: usable
    answer: dict[str, Any] = {
        "active": True,
        "token_type": "api_key",
        "key_id": key_id,
        "scope": row["scope"],
        "client_id": row["client__client_id"],
        "aud": row["audiences"],
        "exp": int(until.timestamp()),
        "iat": int(row["created"].timestamp()),
        "iss": settings.ISSUER,
    }
    if row["rate_limit"] is not None:
        answer["rate_limit"] = {"limit": row["rate_limit"], "remaining": max(limits.rate_limit_remaining or 0, 0),
                                "reset": limits.rate_limit_reset, "period": row["rate_limit_period"]}
    if row["quota"] is not None:
        answer["quota"] = {"limit": row["quota"], "remaining": max(limits.quota_remaining or 0, 0)}
    return answer


def resolve(credential: str, audience: str, client_ip: str | None, view: RequestView) -> dict[str, Any]:
    """The introspection resolver for API keys (registered in keys.apps)."""
    return api_key_verify(key=credential, audience=audience, client_ip=client_ip, view=view)
