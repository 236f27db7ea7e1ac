"""What the staff pages share: their context, their limits answered as pages, the stage checks."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from authserver import events
from authserver.http import NO_STORE
from authserver.ratelimit.limiter import LimiterUnavailable, RateLimited, enforce, note, too_many
from authserver.staff.stages import next_stage, safe_next, stage_url

log = logging.getLogger("authserver.staff")


class Refused(Exception):
    """A limit refused the request; ``response`` is the page to answer with."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("refused")
        self.response = response


def context(request: HttpRequest, title: str, *, admin_nav: bool = False, **extra: Any) -> dict[str, Any]:
    """The admin's look; its navigation only once the admin is open to this session."""
    base = admin.site.each_context(request) if admin_nav else {
        "site_header": admin.site.site_header, "site_title": admin.site.site_title,
        "site_url": None, "has_permission": False, "is_nav_sidebar_enabled": False, "available_apps": [],
    }
    return {**base, "title": title, "subtitle": None, **extra}


def page(request: HttpRequest, template: str, ctx: dict[str, Any], *, status: int = 200) -> HttpResponse:
    response = render(request, template, ctx, status=status)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


def limit(request: HttpRequest, policy: str, key: str) -> None:
    """Count one attempt before any secret is checked; refused as an HTML page (429, or 503 when the
    limiter's store is down: these policies fail closed, never unlimited guessing)."""
    try:
        note(request, enforce(policy, key))
    except RateLimited as exc:
        raw = too_many(request, exc.decision)  # the audit event and the RateLimit fields, as everywhere
        response = page(request, "staff/refused.html", context(
            request, "Too many attempts",
            message="Too many attempts. Wait a few minutes before trying again.",
            retry_after=raw.get("Retry-After", "")), status=429)
        for name in ("Retry-After", "RateLimit", "RateLimit-Policy"):
            if name in raw:
                response[name] = raw[name]
        raise Refused(response) from None
    except LimiterUnavailable:
        log.error("staff sign-in refused: the rate-limit store is unavailable", extra={"policy": policy})
        events.dependency_failed.emit("counter_store")
        response = page(request, "staff/refused.html", context(
            request, "Temporarily unavailable",
            message="Signing in is temporarily unavailable. Try again in a moment."), status=503)
        response["Retry-After"] = "5"
        raise Refused(response) from None


def admin_index() -> str:
    return reverse("admin:index")


def onward(request: HttpRequest) -> HttpResponse:
    """To the next stage not passed yet, or (all passed) to where the session was going."""
    target = safe_next(request, request.POST.get("next") or request.GET.get("next"), admin_index())
    stage = next_stage(request)
    if stage is None:
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(stage_url(stage, target))


def wrong_stage(request: HttpRequest, *allowed: str | None) -> HttpResponse | None:
    """The redirect to the session's real stage when this page is not (yet, or any more) for it."""
    stage = next_stage(request)
    if stage in allowed:
        return None
    return onward(request)
