"""Passkey pages and their JSON endpoints under ``/<ADMIN_PATH>/security/passkeys/``.

Each view enforces its own stage (the gate middleware is a second line, not the only one):

* every page and endpoint needs an authenticated, active staff user;
* enrolling is allowed at once only for a user with no confirmed device at all (first enrolment,
  right after the password step); a user who has a factor must have passed one within
  ``AUTHSERVER_STAFF_STEP_UP_SECONDS`` (step-up), or is sent to the verify page first;
* removing a passkey needs a recent factor too, and never removes the last one.

Attempts are limited per account (``passkey.account``, failing closed: the limiter's store down
answers 503, never unlimited tries). The JavaScript (static/passkeys/passkeys.js) reads its URLs and
the CSRF token from data- attributes and sends the token in the ``X-CSRFToken`` header.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from authserver.audit.context import request_personal
from authserver.http import NO_STORE
from authserver.passkeys import services
from authserver.passkeys.models import PasskeyDevice
from authserver.ratelimit.limiter import enforce, note
from authserver.staff import factor, stages
from authserver.staff.views.common import context as staff_context

BODY_MAX = 16 * 1024  # an attestation with "none" format is well under 2 KiB; packed with a chain under 8


def relying_party(request: HttpRequest) -> services.RelyingParty:
    """The configured RP id and origins, or the request's own host and origin. ``get_host()`` has
    been checked against ALLOWED_HOSTS, and the browser writes the page's true origin into the
    signed client data, so a look-alike site relaying a ceremony never matches (§13.4.9)."""
    host = request.get_host()
    origins = tuple(settings.WEBAUTHN_ORIGINS) or (f"{request.scheme}://{host}",)
    domain, _port = split_domain_port(host)
    return services.RelyingParty(id=settings.WEBAUTHN_RP_ID or domain, origins=origins)


def _is_staff(request: HttpRequest) -> bool:
    """An active staff account past the password step (a one-time password replaced first)."""
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.is_staff) and stages.next_stage(
        request) != "staff:password_change"


def _may_enrol(request: HttpRequest) -> bool:
    return not services.has_any_device(request.user) or factor.recent(request, settings.STAFF_STEP_UP_SECONDS)


def safe_next(request: HttpRequest, default: str | None = None) -> str:
    """The ``next`` to go to afterwards: a path on this host only (no open redirect, ASVS 5.1.5)."""
    candidate = str(request.POST.get("next") or request.GET.get("next") or "")
    if candidate.startswith("/") and not candidate.startswith("//") and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return default or reverse("admin:index")


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}"


def _to_login(request: HttpRequest) -> HttpResponse:
    # The staff plane's password step (or its new-password step for a one-time password).
    stage = stages.next_stage(request) or "staff:login"
    return HttpResponseRedirect(_with_next(reverse(stage), request.get_full_path()))


def _to_verify(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(_with_next(reverse("passkeys:verify"), request.get_full_path()))


def _json(body: dict[str, Any] | str, status: int = 200) -> HttpResponse:
    if isinstance(body, str):  # options already serialised by py_webauthn
        response = HttpResponse(body, content_type="application/json", status=status)
    else:
        response = JsonResponse(body, status=status)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    # The admin's look; its navigation only once the admin is open to this session (authserver.staff).
    verified = bool(getattr(request.user, "is_verified", lambda: False)())
    response = render(request, template, {**staff_context(request, context.get("title", ""), admin_nav=verified),
                                          **context})
    for name, value in NO_STORE.items():
        response[name] = value
    return response


def _forbidden() -> HttpResponse:
    return _json({"error": "forbidden"}, status=403)


def _credential(request: HttpRequest) -> tuple[Any, str]:
    if len(request.body) > BODY_MAX:
        raise services.PasskeyRefused("too_large")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise services.PasskeyRefused("malformed") from None
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise services.PasskeyRefused("malformed")
    return body["credential"], str(body.get("name", ""))


def _limit(request: HttpRequest) -> None:
    # Per account, before any verification; fails closed (503) when the limiter's store is down.
    note(request, enforce("passkey.account", str(request.user.pk)))


# -- Enrolment ---------------------------------------------------------------------------------------

@require_GET
def enrol(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request):
        return _to_login(request)
    if not _may_enrol(request):
        return _to_verify(request)
    first = not services.has_any_device(request.user)
    return _page(request, "passkeys/enrol.html", {
        "title": "Add a passkey", "first": first, "next": safe_next(request, reverse("passkeys:list")),
    })


@require_POST
def enrol_options(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request) or not _may_enrol(request):
        return _forbidden()
    _limit(request)
    return _json(services.passkey_registration_options(user=request.user, rp=relying_party(request),
                                                       session=request.session))


@require_POST
def enrol_complete(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request) or not _may_enrol(request):
        return _forbidden()
    _limit(request)
    first = not services.has_any_device(request.user)
    personal = request_personal(request)
    try:
        credential, name = _credential(request)
        device = services.passkey_enrol(user=request.user, rp=relying_party(request), session=request.session,
                                        credential=credential, name=name, personal=personal)
    except services.PasskeyRefused:
        request.session.pop(services.SESSION_KEY, None)
        return _json({"error": "passkey_refused"}, status=400)
    if first:
        # Creating the credential with user verification proved possession of it: the first
        # enrolment completes the login it interrupted.
        factor.passed(request, device)
    return _json({"ok": True, "redirect": safe_next(request, reverse("passkeys:list"))})


# -- Second factor -----------------------------------------------------------------------------------

@require_GET
def verify(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request):
        return _to_login(request)
    has_passkey = PasskeyDevice.objects.filter(user=request.user, confirmed=True).exists()
    return _page(request, "passkeys/verify.html", {
        "title": "Confirm it's you", "has_passkey": has_passkey, "next": safe_next(request),
    })


@require_POST
def verify_options(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request):
        return _forbidden()
    _limit(request)
    return _json(services.passkey_authentication_options(user=request.user, rp=relying_party(request),
                                                         session=request.session))


@require_POST
def verify_complete(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request):
        return _forbidden()
    _limit(request)
    try:
        credential, _ = _credential(request)
        device = services.passkey_authenticate(user=request.user, rp=relying_party(request), session=request.session,
                                               credential=credential, personal=request_personal(request))
    except services.PasskeyRefused:
        request.session.pop(services.SESSION_KEY, None)
        return _json({"error": "passkey_refused"}, status=400)
    factor.passed(request, device)
    return _json({"ok": True, "redirect": safe_next(request)})


# -- The list, and removal -------------------------------------------------------------------------

@require_GET
def passkey_list(request: HttpRequest) -> HttpResponse:
    if not _is_staff(request):
        return _to_login(request)
    devices = PasskeyDevice.objects.filter(user=request.user, confirmed=True).order_by("created_at")
    return _page(request, "passkeys/list.html", {"title": "Your passkeys", "devices": devices})


@require_POST
def remove(request: HttpRequest, pk: int) -> HttpResponse:
    if not _is_staff(request):
        return _to_login(request)
    if not factor.recent(request, settings.STAFF_STEP_UP_SECONDS):
        return HttpResponseRedirect(_with_next(reverse("passkeys:verify"), reverse("passkeys:list")))
    _limit(request)
    try:
        services.passkey_remove(user=request.user, device_id=pk, personal=request_personal(request))
    except services.PasskeyRefused as exc:
        text = ("This is your last second factor: add another before removing it." if exc.reason == "last_factor"
                else "No such passkey.")
        messages.error(request, text)
    else:
        messages.success(request, "Passkey removed.")
    return HttpResponseRedirect(reverse("passkeys:list"))
