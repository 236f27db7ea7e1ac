"""The limiter: sliding windows counted atomically in one round trip (a Redis script, or the embedded
SQLite store for ``serve`` without Redis), shared by every process. No interval of a window's
length admits more than the limit (authserver.counters.store.sliding), and only admitted requests
are counted, so ``Retry-After`` is when the next request would be admitted.

Policies are named (``token.client``, ``login.ip``…) with a limit per window and a failure mode:

* ``closed``: if the store can't be reached the request is refused with 503 (login, consent,
  management API: they protect human accounts and admin power);
* ``process``: always a per-process window, never the shared store (introspection's safety valve:
  no round trip on the hottest path);
* ``local``: fall back to a per-process window (the same limit, counted by this worker only), so
  machine endpoints stay available when Redis is down while abuse is still bounded (token,
  introspection, revocation). The README documents the choice.

A credential's *effective* limit, learned by anomaly detection, tightens its static one unless the
operator set that policy explicitly (an ``AUTHSERVER_RATE_LIMITS`` entry that differs from the
built-in default): explicit operator limits win over learned ones. An anomaly's action (a limit
tightened or floored) and a limit pinned in the admin still apply. The limits are data the anomaly
job publishes in the counter store (:func:`authserver.counters.effective_limit`: a negative value
is binding), read here; the limiter never calls into the anomaly app. :class:`RateLimitMiddleware` turns outcomes
into HTTP (429 with ``Retry-After`` and RateLimit fields); an unreachable store whose policy fails
closed raises :class:`LimiterUnavailable`, answered 503 by the fail-closed boundary.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from authserver import counters, events
from authserver.conf_limits import RATE_LIMIT_DEFAULTS
from authserver.counters.store import SUB_WINDOWS

log = logging.getLogger("authserver.ratelimit")


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window: int
    on_unavailable: str  # "closed" | "local" | "process"
    explicit: bool = False  # set by the operator (differs from the built-in default): learned limits don't apply


@dataclass(frozen=True)
class Decision:
    policy: Policy
    limit: int
    remaining: int
    reset: int  # seconds until the next request would be admitted (full) or the oldest one leaves
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
        found = _policies[key] = Policy(name, int(count), int(period), mode,
                                        explicit=RATE_LIMIT_DEFAULTS.get(name) != (text, mode))
    return found


# Policies that follow a credential's effective limit, and the subject prefix it is published under.
ADAPTIVE_POLICIES = {"token.client": "client:", "introspect.rs": "rs:"}


def _adaptive_limit(pol: Policy, key: str, limit: int, *, operator_set: bool) -> int:
    """The limit of ``pol`` for ``key``, tightened by its published effective limit.

    A learned limit (published positive) applies only where the operator set no limit of their own
    (``operator_set``: a per-credential limit, or the policy set explicitly); a binding one
    (published negative: an anomaly's action or a pin) always applies.
    """
    prefix = ADAPTIVE_POLICIES.get(pol.name)
    if prefix is None:
        return limit
    if pol.name == "token.client":
        events.token_requested.emit(key)  # attempts, not successes: a refused spike is still seen
    subject = prefix + key
    cached = counters.limit_cache.get(subject)  # a fresh entry without a call; else read (never raises)
    published = cached[1] if cached is not None and cached[0] > time.monotonic() else counters.effective_limit(subject)
    if published is None or (published > 0 and (operator_set or pol.explicit)):
        return limit
    return max(1, min(limit, math.ceil(abs(published) * pol.window / 60)))


class _Sliding:
    """One key's sliding window in this process: buckets as in authserver.counters.store.sliding,
    with a running total so a hit costs O(1) (the introspection hot path counts here)."""

    __slots__ = ("buckets", "total", "until")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [bucket, hits], oldest first
        self.total = 0
        self.until = 0.0  # when its newest hit leaves the window: after that it holds nothing

    def hit(self, *, now: float, period: int, limit: int, record: bool = True) -> tuple[int, float]:
        width = period / SUB_WINDOWS
        current, oldest = int(now // width), int((now - period) // width)
        while self.buckets and self.buckets[0][0] < oldest:
            self.total -= self.buckets.popleft()[1]
        admitted = record and self.total < limit
        if admitted:
            if self.buckets and self.buckets[-1][0] == current:
                self.buckets[-1][1] += 1
            else:
                self.buckets.append([current, 1])
            self.total += 1
            self.until = (current + 1) * width + period
        count = self.total if admitted or not record else self.total + 1
        running = self.total
        for bucket, n in self.buckets:
            running -= n
            if self.total < limit or running < limit:
                return count, (bucket + 1) * width + period
        return count, now + period


_local_lock = threading.Lock()
_local_windows: dict[str, _Sliding] = {}


def _local_hit(key: str, limit: int, window: int, now: float, *, record: bool = True) -> tuple[int, float]:
    with _local_lock:
        found = _local_windows.get(key)
        if found is None:
            if len(_local_windows) > 100_000:  # a flood of keys: forget the windows that hold nothing any more
                for idle in [k for k, w in _local_windows.items() if w.until <= now]:
                    del _local_windows[idle]
            found = _local_windows[key] = _Sliding()
        return found.hit(now=now, period=window, limit=limit, record=record)


_refusals: dict[str, float] = {}  # counter key -> until when a refusal has been audited (per process)


def _first_refusal(counter_key: str, now: float, reset_at: float) -> bool:
    """The first refusal of ``counter_key`` until it is admitted again: audit once, not per request."""
    if _refusals.get(counter_key, 0.0) > now:
        return False
    if len(_refusals) > 100_000:
        _refusals.clear()
    _refusals[counter_key] = reset_at
    return True


def _decision(pol: Policy, limit: int, key: str, count: int, reset_at: float, now: float) -> Decision:
    remaining = limit - count
    allowed = remaining >= 0
    return Decision(pol, limit, max(remaining, 0), max(0, math.ceil(reset_at - now)), allowed,
                    first_refusal=not allowed and _first_refusal(key, now, reset_at))


def _from_store(windows: list[counters.WindowHit], now: float) -> list[counters.Hit] | None:
    """The windows' hits, in one round trip; None when the store can't be reached."""
    if not windows:
        return []
    try:
        return counters.windows(windows, now=now)
    except counters.CountersUnavailable:
        return None


def _counted(pol: Policy, limit: int, counter_key: str, now: float, hit: counters.Hit | None) -> Decision:
    """The decision on a counted hit: the store's (``hit``), else per ``pol``'s failure mode."""
    if hit is not None:
        count, reset_at = int(hit.window_count or 0), float(hit.window_reset or now + pol.window)
    else:
        if pol.on_unavailable == "closed":
            log.error("rate-limit store unavailable; refusing (fails closed)", extra={"policy": pol.name})
            raise LimiterUnavailable(pol.name)
        if pol.on_unavailable != "process":
            log.warning("rate-limit store unavailable; limiting per process", extra={"policy": pol.name})
        # ``process``: a safety valve, not a business limit: counted by this process alone, so the
        # hot path pays no round trip (the cluster-wide ceiling is the limit times the worker count).
        count, reset_at = _local_hit(counter_key, limit, pol.window, now)
    return _decision(pol, limit, counter_key, count, reset_at, now)


def _exceeded(pol: Policy, counter_key: str, now: float, hit: counters.Hit | None) -> Decision | None:
    """The refusal if the read window is already full (nothing counted), else None."""
    reset_at: float
    if hit is not None:
        count, reset_at = int(hit.window_count or 0), float(hit.window_reset or now + pol.window)
    else:
        if pol.on_unavailable == "closed":
            raise LimiterUnavailable(pol.name)
        count, reset_at = _local_hit(counter_key, pol.limit, pol.window, now, record=False)
    if count < pol.limit:
        return None
    return Decision(pol, pol.limit, 0, max(1, math.ceil(reset_at - now)), False,
                    first_refusal=_first_refusal(counter_key, now, reset_at))


def limit_for(name: str, key: str, *, override: int | None = None, now: float | None = None) -> Decision:
    """Count one request of ``key`` against policy ``name`` (with an optional per-key limit the
    operator set, which learned limits never override)."""
    pol = policy(name)
    limit = _adaptive_limit(pol, key, override or pol.limit, operator_set=override is not None)
    now = time.time() if now is None else now
    counter_key = f"{name}:{key}"
    if pol.on_unavailable == "process":
        return _counted(pol, limit, counter_key, now, None)  # never the store
    try:
        hit: counters.Hit | None = counters.consume(counter_key, period=pol.window, limit=limit, now=now)
    except counters.CountersUnavailable:
        hit = None
    return _counted(pol, limit, counter_key, now, hit)


def enforce(name: str, key: str, *, override: int | None = None, now: float | None = None) -> Decision:
    decision = limit_for(name, key, override=override, now=now)
    if not decision.allowed:
        raise RateLimited(decision)
    return decision


def already_exceeded(name: str, key: str, *, now: float | None = None) -> Decision | None:
    """For failure counters: is ``key``'s window already full? (Does not count a hit.) A ``process``
    policy is read where :func:`limit_for` counts it: in this process, never the store."""
    pol = policy(name)
    now = time.time() if now is None else now
    counter_key = f"{name}:{key}"
    if pol.on_unavailable == "process":
        return _exceeded(pol, counter_key, now, None)  # counted by this process alone (limit_for)
    hits = _from_store([counters.WindowHit(counter_key, pol.window, pol.limit, record=False)], now)
    return _exceeded(pol, counter_key, now, hits[0] if hits else None)


def enforce_unless_exceeded(name: str, key: str, *, checked: tuple[str, str] | None,
                            now: float | None = None) -> Decision:
    """``enforce(name, key)``, then raise RateLimited if ``already_exceeded(*checked)``: the same
    decisions, in this order, from one round trip to the store (the checks a request makes before
    any work). Each policy keeps its own failure mode when the store is down."""
    pol = policy(name)
    limit = _adaptive_limit(pol, key, pol.limit, operator_set=False)
    now = time.time() if now is None else now
    counter_key = f"{name}:{key}"
    windows = [] if pol.on_unavailable == "process" else [counters.WindowHit(counter_key, pol.window, limit)]
    checked_pol = checked_key = None
    if checked is not None:
        checked_pol, checked_key = policy(checked[0]), f"{checked[0]}:{checked[1]}"
        if checked_pol.on_unavailable != "process":
            windows.append(counters.WindowHit(checked_key, checked_pol.window, checked_pol.limit, record=False))
    hits = iter(_from_store(windows, now) or [])  # empty when the store is down: each policy falls back
    decision = _counted(pol, limit, counter_key, now, None if pol.on_unavailable == "process" else next(hits, None))
    if not decision.allowed:
        raise RateLimited(decision)
    if checked_pol is not None and checked_key is not None:
        blocked = _exceeded(checked_pol, checked_key, now, next(hits, None))
        if blocked is not None:
            raise RateLimited(blocked)
    return decision


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


_pending: ContextVar[list[Decision] | None] = ContextVar("ratelimit_pending", default=None)


def collect_start() -> None:
    """Start collecting decisions taken where no HTTP request is at hand (DOT's validator), so
    :func:`collect_into` can add their RateLimit fields to the response (learned limits included)."""
    _pending.set([])


def remember(decision: Decision) -> Decision:
    pending = _pending.get()
    if pending is not None:
        pending.append(decision)
    return decision


def collect_into(request: HttpRequest) -> None:
    for decision in _pending.get() or []:
        note(request, decision)
    _pending.set(None)


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
    _refusals.clear()
