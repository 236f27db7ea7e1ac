"""The limiter: fixed windows counted atomically in one round trip (Redis MULTI, or the embedded
SQLite store for ``serve`` without Redis), shared by every process.

Policies are named (``token.client``, ``login.ip``…) with a limit per window and a failure mode:

* ``closed``: if the store can't be reached the request is refused with 503 (login, consent,
  management API: they protect human accounts and admin power);
* ``process``: always a per-process window, never the shared store (introspection's safety valve:
  no round trip on the hottest path);
* ``local``: fall back to a per-process window (the same limit, counted by this worker only), so
  machine endpoints stay available when Redis is down while abuse is still bounded (token,
  introspection, revocation). The README documents the choice.

A credential's *effective* limit, learned by anomaly detection, tightens its static one: it is data
the anomaly job publishes in the counter store (:func:`authserver.counters.effective_limit`), read
here; the limiter never calls into the anomaly app. :class:`RateLimitMiddleware` turns outcomes
into HTTP (429 with ``Retry-After`` and RateLimit fields); an unreachable store whose policy fails
closed raises :class:`LimiterUnavailable`, answered 503 by the fail-closed boundary.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from authserver import counters, events

log = logging.getLogger("authserver.ratelimit")


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window: int
    on_unavailable: str  # "closed" | "local" | "process"


@dataclass(frozen=True)
class Decision:
    policy: Policy
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    allowed: bool
    first_refusal: bool = False  # exactly at the limit + 1: audit once per window, not per request


class RateLimited(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.policy.name)
        self.decision = decision


class LimiterUnavailable(Exception):
    """The shared store is down and the policy fails closed."""


_policies: dict[tuple[str, tuple[str, str]], Policy] = {}


def policy(name: str) -> Policy:
    text, mode = settings.RATE_LIMITS[name]
    key = (name, (text, mode))
    found = _policies.get(key)  # parsed once per (name, setting), so tests can still change it
    if found is None:
        count, _, period = text.partition("/")
        found = _policies[key] = Policy(name, int(count), int(period), mode)
    return found


# Policies that follow a credential's effective limit, and the subject prefix it is published under.
ADAPTIVE_POLICIES = {"token.client": "client:", "introspect.rs": "rs:"}


def _adaptive_limit(name: str, key: str, limit: int, window: int) -> int:
    """The static limit of ``name`` for ``key``, tightened by its published effective limit."""
    prefix = ADAPTIVE_POLICIES.get(name)
    if prefix is None:
        return limit
    if name == "token.client":
        events.token_requested.emit(key)  # attempts, not successes: a refused spike is still seen
    subject = prefix + key
    cached = counters.limit_cache.get(subject)  # a fresh entry without a call; else read (never raises)
    per_minute = cached[1] if cached is not None and cached[0] > time.monotonic() else counters.effective_limit(subject)
    if per_minute is None:
        return limit
    return max(1, min(limit, math.ceil(per_minute * window / 60)))


_local_lock = threading.Lock()
_local_windows: dict[tuple[str, int], int] = {}


def _local_hit(key: str, limit: int, window: int, now: float) -> tuple[int, int]:
    start = int(now // window * window)
    with _local_lock:
        if len(_local_windows) > 100_000:
            for stale in [k for k in _local_windows if k[1] < start]:
                _local_windows.pop(stale, None)
        count = _local_windows.get((key, start), 0) + 1
        _local_windows[(key, start)] = count
    return count, start + window


def limit_for(name: str, key: str, *, override: int | None = None) -> Decision:
    """Count one request of ``key`` against policy ``name`` (with an optional per-key limit)."""
    pol = policy(name)
    limit = override or pol.limit
    limit = _adaptive_limit(name, key, limit, pol.window)
    now = time.time()
    counter_key = f"{name}:{key}"
    if pol.on_unavailable == "process":
        # A safety valve, not a business limit: counted by this process alone, so the hot path
        # pays no round trip (the cluster-wide ceiling is the limit times the worker count).
        count, reset_at = _local_hit(counter_key, limit, pol.window, now)
        remaining = limit - count
        return Decision(pol, limit, max(remaining, 0), max(0, int(reset_at - now)), remaining >= 0,
                        first_refusal=remaining == -1)
    try:
        result = counters.consume(counter_key, period=pol.window)
        remaining = limit - int(result.window_count or 0)
        reset_at = int(result.window_reset or now + pol.window)
    except counters.CountersUnavailable:
        if pol.on_unavailable == "closed":
            log.error("rate-limit store unavailable; refusing (fails closed)", extra={"policy": name})
            raise LimiterUnavailable(name) from None
        log.warning("rate-limit store unavailable; limiting per process", extra={"policy": name})
        count, reset_at = _local_hit(counter_key, limit, pol.window, now)
        remaining = limit - count
    return Decision(pol, limit, max(remaining, 0), max(0, int(reset_at - now)), remaining >= 0,
                    first_refusal=remaining == -1)


def enforce(name: str, key: str, *, override: int | None = None) -> Decision:
    decision = limit_for(name, key, override=override)
    if not decision.allowed:
        raise RateLimited(decision)
    return decision


def already_exceeded(name: str, key: str) -> Decision | None:
    """For failure counters: is ``key`` already over the limit? (Does not count a hit.)"""
    pol = policy(name)
    try:
        count = counters.window_count(f"{name}:{key}", pol.window)
    except counters.CountersUnavailable:
        if pol.on_unavailable == "closed":
            raise LimiterUnavailable(name) from None
        with _local_lock:
            count = _local_windows.get((f"{name}:{key}", int(time.time() // pol.window * pol.window)), 0)
    if count < pol.limit:
        return None
    reset = pol.window - int(time.time() % pol.window)
    return Decision(pol, pol.limit, 0, reset, False)


def headers(decisions: list[Decision]) -> dict[str, str]:
    """IETF httpapi RateLimit fields (draft-ietf-httpapi-ratelimit-headers): policy and state."""
    if not decisions:
        return {}
    policies = ", ".join(f'"{d.policy.name}";q={d.limit};w={d.policy.window}' for d in decisions)
    tightest = min(decisions, key=lambda d: (d.remaining, d.reset))
    out = {"RateLimit-Policy": policies,
           "RateLimit": f'"{tightest.policy.name}";r={tightest.remaining};t={tightest.reset}'}
    if not tightest.allowed:
        out["Retry-After"] = str(max(1, tightest.reset))
    return out


def note(request: HttpRequest, decision: Decision) -> None:
    """Remember a decision so its RateLimit fields are added to the response."""
    decisions = getattr(request, "_ratelimit_decisions", None)
    if decisions is None:
        decisions = []
        request._ratelimit_decisions = decisions  # type: ignore[attr-defined]
    decisions.append(decision)


def too_many(request: HttpRequest, decision: Decision) -> HttpResponse:
    events.rate_limit_refused.emit(decision.policy.name)
    if decision.first_refusal:
        from authserver.audit.context import request_personal
        from authserver.audit.services import audit_record

        audit_record(event="rate_limit.exceeded", outcome="failure", actor="ratelimit",
                     subject=f"policy:{decision.policy.name}",
                     details={"limit": decision.limit, "window": decision.policy.window},
                     personal={**request_personal(request), "key": getattr(decision, "key", "")})
    response = JsonResponse({"error": "rate_limited", "error_description": "Too many requests; retry later."},
                            status=429)
    for name, value in headers([decision]).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


class RateLimitMiddleware:
    """429 for a refused request; RateLimit fields on every response that was counted."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except RateLimited as exc:
            return too_many(request, exc.decision)
        decisions = getattr(request, "_ratelimit_decisions", None)
        if decisions:
            for name, value in headers(decisions).items():
                response.setdefault(name, value)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RateLimited):
            return too_many(request, exception.decision)
        return None


def reset_for_tests() -> None:
    with _local_lock:
        _local_windows.clear()
