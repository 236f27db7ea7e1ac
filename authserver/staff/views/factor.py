"""The second factor: verify one (TOTP or a recovery code), or enrol an authenticator app.

Attempts count against ``staff.factor`` per account before any code is checked (fail closed), and
every failure is audited. django-otp's own throttling of each device and its refusal to accept a
TOTP code twice (``last_t``) apply as well."""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice

from authserver.audit.context import request_personal
from authserver.audit.services import audit_record
from authserver.staff import factor, selectors, services
from authserver.staff.models import TOTPDevice
from authserver.staff.stages import safe_next
from authserver.staff.stepup import is_fresh, step_up
from authserver.staff.views.common import Refused, admin_index, context, limit, onward, page, wrong_stage


def _passed(request: HttpRequest, device: Device) -> None:
    factor.passed(request, device)
    audit_record(event="staff.factor.passed", actor=f"user:{device.user_id}", subject=f"user:{device.user_id}",
                 details={"kind": services.device_kind(device)}, personal=request_personal(request))


def _failed(request: HttpRequest, stage: str) -> None:
    user = request.user
    audit_record(event="staff.factor.failed", outcome="failure", actor=f"user:{user.pk}", subject=f"user:{user.pk}",
                 details={"stage": stage}, personal=request_personal(request))


def _check(user: Any, code: str) -> Device | None:
    """The device that accepts ``code``: an authenticator's code, or one of the recovery codes."""
    code = code.strip()
    if not code or len(code) > 64:
        return None
    for device in selectors.staff_factors(user=user):
        if isinstance(device, TOTPDevice) and code.replace(" ", "").isdigit() and device.verify_token(
                code.replace(" ", "")):
            return device
        if isinstance(device, StaticDevice) and not code.isdigit() and services.recovery_code_use(
                device=device, code=code):
            return device
    return None


@sensitive_post_parameters()
@csrf_protect
@never_cache
def verify_view(request: HttpRequest) -> HttpResponse:
    stepping_up = bool(request.GET.get("step_up"))
    wrong = wrong_stage(request, "staff:verify", *([None] if stepping_up else []))
    if wrong is not None:
        return wrong
    error = ""
    if request.method == "POST":
        try:
            limit(request, "staff.factor", f"user:{request.user.pk}")
        except Refused as refused:
            return refused.response
        device = _check(request.user, str(request.POST.get("code", "")))
        if device is not None:
            _passed(request, device)
            return onward(request)
        _failed(request, "verify")
        error = "That code was not accepted. Check the time on your device, or use a recovery code."
    return page(request, "staff/verify.html", context(
        request, "Second factor", error=error, next=request.GET.get("next", ""), stepping_up=stepping_up))


def _qr_svg(device: TOTPDevice) -> str:
    # Inline SVG, no script and no external image: the page keeps a strict CSP.
    return mark_safe(segno.make(device.config_url, error="m").svg_inline(  # noqa: S308 - segno's own markup
        scale=4, border=4, light="#ffffff", dark="#000000", omitsize=False))


def _base32(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@sensitive_post_parameters()
@csrf_protect
@never_cache
def enrol_view(request: HttpRequest) -> HttpResponse:
    # First enrolment: right after the password (no factor yet). Another authenticator: a verified
    # session with a fresh factor (step-up), never the password alone.
    wrong = wrong_stage(request, "staff:enrol", None)
    if wrong is not None:
        return wrong
    first = not selectors.staff_has_factor(user=request.user)
    if not first and not is_fresh(request):
        return step_up(request)
    device = services.totp_device_pending(user=request.user)
    error = ""
    if request.method == "POST":
        try:
            limit(request, "staff.factor", f"user:{request.user.pk}")
        except Refused as refused:
            return refused.response
        if services.totp_device_confirm(device=device, token=str(request.POST.get("code", ""))[:16],
                                        actor=request.user):
            _passed(request, device)
            if not selectors.staff_factors(user=request.user) or not any(
                    isinstance(d, StaticDevice) for d in selectors.staff_factors(user=request.user)):
                codes = services.recovery_codes_generate(user=request.user, actor=request.user)
                onward_to = safe_next(request, request.POST.get("next") or request.GET.get("next"), admin_index())
                return page(request, "staff/recovery_codes.html", context(
                    request, "Your recovery codes", codes=codes, next=onward_to, admin_nav=True))
            return onward(request)
        _failed(request, "enrol")
        error = "That code was not accepted. Enter the 6-digit code your app shows now."
    return page(request, "staff/enrol.html", context(
        request, "Set up your authenticator app", qr=_qr_svg(device), secret=_base32(device), error=error,
        first=first, next=request.GET.get("next", ""), admin_nav=not first))
