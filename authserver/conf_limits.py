"""The rate-limit policies' defaults and the parser of ``AUTHSERVER_RATE_LIMITS`` (authserver.conf)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType

from django.core.exceptions import ImproperlyConfigured

# Rate limits: name -> ("LIMIT/WINDOW_SECONDS", failure mode when the store is down). "closed"
# answers 503; "local" falls back to a per-process window; "process" only ever counts in-process
# (authserver/ratelimit/limiter.py).
RATE_LIMIT_DEFAULTS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "token.ip": ("1200/60", "local"),
    "token.client": ("6000/60", "local"),
    "token.auth_failure.ip": ("20/300", "local"),
    "introspect.rs": ("600000/60", "process"),
    "revocations.rs": ("120/60", "local"),  # stream (re)connections per resource server (C7)
    "revoke.ip": ("600/60", "local"),
    "pathkey.rs": ("600/60", "local"),  # each kit process: at start, then at most every 30 s on a mismatch
    "resource_metadata.rs": ("600/60", "local"),  # each kit process: at start, then hourly (RFC 9728)
    "discovery.ip": ("600/60", "local"),  # callers cache the answer until valid_until
    "login.ip": ("30/300", "closed"),
    "login.account": ("10/300", "closed"),
    "passkey.account": ("10/300", "closed"),
    "staff.factor": ("10/300", "closed"),  # second-factor attempts per staff account (authserver.staff)
    "consent.user": ("60/60", "closed"),
    "apps.user": ("30/300", "closed"),  # revocations on the connected-apps page, per user
    "device.ip": ("60/60", "local"),  # RFC 8628 §3.1 device authorization requests per network
    "device.user": ("20/300", "closed"),  # user codes entered, per user and per network (§5.1: guessing)
    "api.client": ("600/60", "closed"),
    "cimd.fetch": ("30/60", "local"),  # Client ID Metadata Document fetches per host (authserver.oauth.cimd)
    "register.ip": ("20/3600", "closed"),  # RFC 7591/7592 requests per address (clients.registration)
})
RATE_LIMIT_MODES = frozenset({"closed", "local", "process"})


def parse_rate_limits(name: str, raw: str) -> Mapping[str, tuple[str, str]]:
    """``{"name": ["LIMIT/WINDOW", "mode"]}``, or ``{"name": "LIMIT/WINDOW"}`` to keep the policy's mode."""
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object of policy name -> limit")
    limits = dict(RATE_LIMIT_DEFAULTS)
    for policy, value in overrides.items():
        if isinstance(value, str) and policy in limits:
            value = [value, limits[policy][1]]
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise ImproperlyConfigured(f"{name}: bad policy {policy}: {value!r} "
                                       "(a new policy needs [\"LIMIT/WINDOW\", mode])")
        limit, mode = value
        if mode not in RATE_LIMIT_MODES or not re.fullmatch(r"[1-9][0-9]*/[1-9][0-9]*", limit):
            raise ImproperlyConfigured(f"{name}: bad policy {policy}: {limit!r}, {mode!r}")
        limits[policy] = (limit, mode)
    return MappingProxyType(limits)
