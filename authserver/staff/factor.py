"""The one place a session records a passed second factor, and asks how long ago it was.

Every second-factor method (TOTP, passkeys, recovery codes) ends in :func:`passed`: django-otp's
``login`` marks the session verified (``request.user.is_verified()`` through ``OTPMiddleware``),
and the time is kept so that sensitive actions can ask again when the proof is stale (step-up)."""

from __future__ import annotations

import time

from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.models import Device

SESSION_AT = "staff.factor_at"


def passed(request: HttpRequest, device: Device) -> None:
    """Record that ``request.user`` just passed ``device`` (after the device verified its proof).

    The session gains privilege here, so it gets a new key (as Django's login does at the password
    step): a session id learnt before the second factor is worth nothing after it."""
    request.session.cycle_key()
    otp_login(request, device)
    request.session[SESSION_AT] = int(time.time())


def age(request: HttpRequest) -> float | None:
    """Seconds since this session last passed a second factor; ``None`` if it never did."""
    at = request.session.get(SESSION_AT)
    if not isinstance(at, int) or not getattr(request.user, "is_verified", lambda: False)():
        return None
    return max(0.0, time.time() - at)


def recent(request: HttpRequest, max_age: float) -> bool:
    """True when the session passed a second factor within ``max_age`` seconds."""
    seconds = age(request)
    return seconds is not None and seconds <= max_age
