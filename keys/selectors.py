"""API-key verification: the introspection answer for a key (RFC 7662 shape).

Order matters for cost and for what leaks: format and checksum first (no I/O), then the
in-process cache, then at most one indexed query. Every failure answers exactly
``{"active": false}``; unknown, revoked, expired, suspended, out-of-quota, foreign-audience and
wrong-address keys are indistinguishable. No database write happens here: usage goes to the
counters (authserver.counters) and a job rolls it up.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from authserver import counters, credentials, generation, hotcache
from authserver.anomaly.hooks import key_refused, key_verified
from authserver.hotsql import HotQuery
from keys.models import ApiKey
from keys.policy import ip_allowed
from keys.usability import api_key_end, api_key_usable_until

INACTIVE: dict[str, Any] = {"active": False}

_FIELDS = (
    "id", "status", "expires", "grace_ends", "created", "scope", "audiences", "allowed_ips", "rate_limit",
    "rate_limit_period", "quota", "uses", "client__client_id", "client__credentials_revoked_at",
)


def _usable_until(row: dict[str, Any]) -> datetime | None:
    """When a key row stops being usable, or None if it is not usable now (keys.usability)."""
    return api_key_usable_until(status=row["status"], expires=row["expires"], grace_ends=row["grace_ends"],
                                created=row["created"], client_cutoff=row["client__credentials_revoked_at"],
                                now=timezone.now())


def _end(row: dict[str, Any]) -> datetime:
    """The key's expiry, or the end of its rotation grace if that comes first."""
    return api_key_end(expires=row["expires"], grace_ends=row["grace_ends"])


_API_KEY = HotQuery(lambda digest: ApiKey.objects.filter(digest=digest).values(*_FIELDS))


def api_key_lookup(*, key: str, trusted: Any = generation.NOW) -> dict[str, Any] | None:
    """The usable key row for ``key``, from the cache or one query; None if unknown or unusable.

    ``trusted`` is this request's ``generation.cache_trusted()`` (None: use no cached answer).
    """
    prefix = credentials.api_key_prefix()
    if len(key) != len(prefix) + 1 + credentials.BODY_LENGTH:
        return None
    # Only a value of the right length is hashed; the full format check (pattern and checksum)
    # runs on a miss, before the query: the caches only ever hold digests of well-formed keys.
    trusted = generation.trusted_now(trusted)
    digest = credentials.digest(key)
    row = hotcache.api_keys.get(digest, trusted)
    if row is not None:  # usable: an entry lives no longer than its key, and status changes bump the generation
        return row
    refused = hotcache.absent.get(digest, trusted)
    if refused is not None:
        if refused is not True:
            key_refused(refused)  # still counted, cached or not
        return None
    if not credentials.is_well_formed(key, prefix):
        return None
    gen = generation.current()
    row = _API_KEY.one(digest)
    until = _usable_until(row) if row is not None else None
    if row is None or until is None:
        if row is not None:
            key_refused(row)  # revoked/suspended key presented (authserver.anomaly); the answer is unchanged
        hotcache.absent.put(digest, row or True, expires_at=time.time() + hotcache.TTL, gen=gen)
        return None
    hotcache.api_keys.put(digest, row, expires_at=until.timestamp(), gen=gen)
    return row


def api_key_verify(*, key: str, audience: str, client_ip: str | None,
                   trusted: Any = generation.NOW) -> dict[str, Any]:
    """Introspection of an API key by the resource server ``audience``.

    Raises ``counters.CountersUnavailable`` when a key with a quota or rate limit can't be counted:
    the caller answers 503 rather than guess.
    """
    row = api_key_lookup(key=key, trusted=trusted)
    if row is None or audience not in row["audiences"] or not ip_allowed(client_ip, row["allowed_ips"]):
        return dict(INACTIVE)
    key_id = str(row["id"])
    row = key_verified(row, key_id, client_ip)  # traffic + effective limit (authserver.anomaly)
    limits = counters.consume(key_id, quota=row["quota"], used_baseline=row["uses"], rate_limit=row["rate_limit"],
                              period=row["rate_limit_period"])
    if limits.out_of_quota:
        return dict(INACTIVE)
    if limits.rate_limited:
        # The key is good for this caller but over its own limit: say so, so the AI API can answer
        # 429 with Retry-After to its client. Still not active: a resource server that ignores the
        # extra fields denies the request (fail closed).
        retry_after = max(1, int((limits.rate_limit_reset or 0) - timezone.now().timestamp()))
        return {"active": False, "rate_limited": True, "retry_after": retry_after,
                "rate_limit": {"limit": row["rate_limit"], "remaining": 0, "reset": limits.rate_limit_reset}}
    counters.record_use(key_id, client_ip)
    until = _end(row)  # api_key_lookup returned it usable
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
