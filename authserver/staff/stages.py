"""The one rule of the staff plane: what a session must pass before the admin opens, in order.

1. a password (the staff login page, rate limited like ``/accounts/login/``);
2. a new password, if the account's was set for it once (``serve``'s first-run admin);
3. a second factor: verify one if the account has any confirmed device, else enrol one.

:func:`next_stage` names the first stage not passed yet (a URL name in the ``staff`` namespace), or
``None`` when the admin may open. The gate (authserver.staff.middleware) and every staff page ask it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from authserver.staff import selectors


def next_stage(request: Any) -> str | None:
    user = request.user
    if not selectors.staff_is_staff(user):
        return "staff:login"
    if selectors.staff_must_change_password(user=user):
        return "staff:password_change"
    # is_verified comes from django-otp's OTPMiddleware; a user logged in during this very request
    # (the password step) has not passed a factor yet.
    if not getattr(user, "is_verified", lambda: False)():
        return "staff:verify" if selectors.staff_has_factor(user=user) else "staff:enrol"
    return None


def safe_next(request: Any, candidate: str | None, default: str) -> str:
    """Where to go afterwards: ``candidate`` only if it stays on this site."""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return default


def stage_url(stage: str, next_url: str | None = None, **extra: str) -> str:
    query = {**({"next": next_url} if next_url else {}), **extra}
    return reverse(stage) + (f"?{urlencode(query)}" if query else "")
