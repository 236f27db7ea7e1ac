"""The "Security" page: a staff member's second factors, recovery codes renewed, a factor removed.

Open only to a verified session; every change asks for a fresh second factor (step-up)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp.models import Device

from authserver.staff import selectors, services
from authserver.staff.stepup import fresh_factor_required
from authserver.staff.views.common import context, page, wrong_stage


def _rows(request: HttpRequest) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for device in selectors.staff_factors(user=request.user):
        kind = services.device_kind(device)
        extra = f" ({device.token_set.count()} left)" if kind == "recovery_codes" else ""
        rows.append({"id": device.persistent_id, "name": f"{device.name}{extra}", "kind": kind})
    return rows


@csrf_protect
@never_cache
def security_view(request: HttpRequest) -> HttpResponse:
    wrong = wrong_stage(request, None)
    if wrong is not None:
        return wrong
    return page(request, "staff/security.html", context(request, "Security", admin_nav=True, devices=_rows(request)))


@csrf_protect
@never_cache
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    wrong = wrong_stage(request, None)
    if wrong is not None:
        return wrong
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _regenerate(request)


@fresh_factor_required
def _regenerate(request: HttpRequest) -> HttpResponse:
    codes = services.recovery_codes_generate(user=request.user, actor=request.user)
    return page(request, "staff/recovery_codes.html", context(
        request, "Your recovery codes", codes=codes, next=reverse("staff:security"), admin_nav=True))


@csrf_protect
@never_cache
def remove_view(request: HttpRequest) -> HttpResponse:
    wrong = wrong_stage(request, None)
    if wrong is not None:
        return wrong
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _remove(request)


@fresh_factor_required
def _remove(request: HttpRequest) -> HttpResponse:
    device = Device.from_persistent_id(str(request.POST.get("device", ""))[:200])
    if device is None or device.user_id != request.user.pk or not device.confirmed:
        messages.error(request, "No such second factor.")
        return HttpResponseRedirect(reverse("staff:security"))
    others = [d for d in selectors.staff_factors(user=request.user)
              if d.persistent_id != device.persistent_id and services.device_kind(d) != "recovery_codes"]
    if services.device_kind(device) != "recovery_codes" and not others:
        messages.error(request, "This is your only second factor: add another before removing it.")
        return HttpResponseRedirect(reverse("staff:security"))
    services.factor_remove(device=device, actor=request.user)
    messages.success(request, f"Removed “{device.name}”.")
    return HttpResponseRedirect(reverse("staff:security"))
