"""``accounts/device``: where a person approves a device (RFC 8628 §3.3; the verification_uri).

Behind sign-in. Step one asks for the user code (pre-filled from ``verification_uri_complete``,
§3.3.1, but never acted on until the person submits it: a link alone approves nothing); step two
shows what the device asks for, like the consent page (the app, its APIs, its scopes), with Allow
and Deny; both are POSTs with the CSRF token. Every code entered counts against ``device.user``
per user *and* per network (§5.1: a user code is short, so guessing is bounded twice over), and an
unknown, expired or already used code gets one answer.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from authserver.audit.context import request_personal
from authserver.netaddr import client_address, client_network
from authserver.oauth.consent import consent_audiences
from authserver.oauth.device import user_codes
from authserver.oauth.device.services import device_authorization_decide, device_authorization_pending
from authserver.ratelimit.limiter import enforce, note
from clients.models import Scope

TEMPLATE = "accounts/device.html"


def _scope_items(scope: str) -> list[tuple[str, str]]:
    names = scope.split()
    described = dict(Scope.objects.filter(name__in=names).values_list("name", "description"))
    return [(name, str(described.get(name) or "")) for name in names]


@never_cache
@login_required
def device(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        typed = request.GET.get("user_code", "")
        return render(request, TEMPLATE, {"step": "enter", "user_code": typed if user_codes.normalise(typed) else ""})
    note(request, enforce("device.user", f"user:{request.user.pk}"))
    note(request, enforce("device.user", f"net:{client_network(client_address(request.META))}"))
    typed = request.POST.get("user_code", "")
    authorization = device_authorization_pending(user_code=typed)
    if authorization is None:
        return render(request, TEMPLATE, {"step": "enter", "invalid": True,
                                          "user_code": str(typed)[:user_codes.MAX_INPUT]}, status=400)
    decision = request.POST.get("decision")
    if decision not in {"allow", "deny"}:
        context: dict[str, Any] = {
            "step": "confirm", "application": authorization.client,
            "user_code": user_codes.display(user_codes.normalise(typed) or ""),
            "apis": consent_audiences(client=authorization.client, resources=list(authorization.resource)),
            "scope_items": _scope_items(authorization.scope),
        }
        return render(request, TEMPLATE, context)
    allowed = decision == "allow"
    if not device_authorization_decide(authorization=authorization, allow=allowed, actor=request.user,
                                       personal=request_personal(request)):
        return render(request, TEMPLATE, {"step": "enter", "invalid": True}, status=400)
    return render(request, TEMPLATE, {"step": "allowed" if allowed else "denied",
                                      "application": authorization.client})
