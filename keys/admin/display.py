"""How the key admin shows times, periods, audiences and a key's status as it stands now."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.html import format_html

from authserver import adminkit
from authserver.oauth.usability import before_client_cutoff
from keys.forms import format_duration
from keys.models import ApiKey, ApiKeyStatus


def when(value: Any, *, utc: bool = True) -> str:
    """The admin's one date-time format (authserver.adminkit.when); ``utc`` is kept for callers."""
    return adminkit.when(value)


def period(seconds: int | None) -> str:
    names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    if seconds in names:
        return names[seconds]
    return format_duration(seconds or 0)


def effective_status(key: ApiKey, now: Any = None) -> tuple[str, str]:
    """``(css class, label)`` of what verification does with the key *now*.

    The stored status lags behind in three cases that jobs record later: the expiry passed, the
    grace period after a rotation ended, or a compromise response revoked the client's keys.
    """
    now = now or timezone.now()
    cutoff = key.client.credentials_revoked_at
    # Whether it works is keys.usability's one rule; the rest only says why it doesn't.
    if key.usable_until(client_cutoff=cutoff, now=now) is not None:
        if key.grace_ends is not None:
            return "rotated", f"Rotated: works until {key.grace_ends:%Y-%m-%d %H:%M} UTC"
        return "active", "Active"
    if key.status in {ApiKeyStatus.REVOKED, ApiKeyStatus.EXPIRED}:
        return key.status, key.get_status_display()
    if before_client_cutoff(created=key.created, client_cutoff=cutoff):
        return "revoked", "Revoked (compromise response)"
    if key.status != ApiKeyStatus.ACTIVE:
        return key.status, key.get_status_display()
    if key.expires <= now:
        return "expired", "Expired"
    return "revoked", "Revoked (rotated; grace ended)"


def status_badge(key: ApiKey, *, short: bool = False) -> str:
    css, label = effective_status(key)
    if short and ":" in label:  # the list keeps one word; the rest is in the tooltip
        return format_html(
            '<span class="as-status as-status-{}" title="{}">{}</span>', css, label, label.partition(":")[0]
        )
    if short and " (" in label:
        return format_html(
            '<span class="as-status as-status-{}" title="{}">{}</span>', css, label, label.partition(" (")[0]
        )
    return format_html('<span class="as-status as-status-{}">{}</span>', css, label)


def audience(uri: str) -> str:
    """An audience URI that may break after its scheme and before path segments, never mid-host."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return format_html("{}", uri)
    host, slash, path_ = rest.partition("/")
    return format_html("{}://<wbr>{}{}", scheme, host, format_html("<wbr>/{}", path_) if slash else "")


def rate_limit_text(key: ApiKey) -> str:
    if not key.rate_limit:
        return "none"
    return f"{key.rate_limit:,} requests per {period(key.rate_limit_period)}"


def quota_text(key: ApiKey) -> str:
    return f"{key.quota:,} requests in total" if key.quota else "unlimited"
