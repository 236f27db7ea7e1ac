"""The gate: no page under the admin path opens on a password alone (authserver.staff.stages).

It runs after django-otp's ``OTPMiddleware`` (``request.user.is_verified()``) and before any admin
view, so a refused request reaches no view code: nothing is read, nothing changes. Only the staff
pages themselves (``/<ADMIN_PATH>/security/``) pass, and each of them checks its own stage.
Static files are not under the admin path (``STATIC_URL``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve

from authserver import notfound
from authserver.staff import selectors
from authserver.staff.stages import next_stage, stage_url


class StaffGateMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = f"/{settings.ADMIN_PATH}/"
        self.exempt = f"{self.prefix}security/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(self.prefix) and not path.startswith(self.exempt):
            if not _exists(path):
                return notfound.response()  # nothing here: the uniform 404, before any session or user
            stage = next_stage(request)
            if stage is not None:
                user = request.user
                if getattr(user, "is_authenticated", False) and not selectors.staff_is_staff(user):
                    raise PermissionDenied  # a signed-in non-staff account: nothing here, as Django's admin
                back = request.get_full_path() if request.method == "GET" else None
                return HttpResponseRedirect(stage_url(stage, back))
        return self.get_response(request)


def _exists(path: str) -> bool:
    """Whether the URL map has ``path`` (the admin's catch-all view is off: authserver.urls). An
    unknown admin URL answers the uniform 404 to everyone, not a redirect to the sign-in that would
    tell a visitor this is the admin (issue 15)."""
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
