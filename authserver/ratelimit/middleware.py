"""Turns limiter outcomes into HTTP: 429 with Retry-After and RateLimit fields, or 503."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from authserver.ratelimit.limiter import Decision, LimiterUnavailable, RateLimited, headers

log = logging.getLogger("authserver.ratelimit")


def note(request: HttpRequest, decision: Decision) -> None:
    """Remember a decision so its RateLimit fields are added to the response."""
    decisions = getattr(request, "_ratelimit_decisions", None)
    if decisions is None:
        decisions = []
        request._ratelimit_decisions = decisions  # type: ignore[attr-defined]
    decisions.append(decision)


def too_many(request: HttpRequest, decision: Decision) -> HttpResponse:
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
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except RateLimited as exc:
            return too_many(request, exc.decision)
        except LimiterUnavailable:
            from authserver.middleware import unavailable

            return unavailable()
        for name, value in headers(getattr(request, "_ratelimit_decisions", [])).items():
            response.setdefault(name, value)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RateLimited):
            return too_many(request, exception.decision)
        if isinstance(exception, LimiterUnavailable):
            from authserver.middleware import unavailable

            return unavailable()
        return None
