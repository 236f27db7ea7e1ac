"""The landing page at ``/`` and signing out.

``/`` is where a sign-in that was not continuing anything lands (``LOGIN_REDIRECT_URL``): who is
signed in and a way out, or a way in. It names no software (issue 15: unknown paths will answer
one identical 404). Signing out is a POST with the CSRF token (a GET that signed out could be
triggered by any page that embeds the URL); ``GET`` asks for confirmation. ``next`` (the consent
page's "Not you?") sends the browser back to the same authorization request after signing out,
and is honoured only for a path on this site (never a scheme, host or ``//``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


def safe_local_path(value: str) -> str:
    """``value`` if it is a path on this site (``/…``, not ``//…`` or ``/\\…``), else ``""``."""
    if not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\t\\\x00"):
        return ""
    return value


@method_decorator(never_cache, name="dispatch")
class LogoutView(auth_views.LogoutView):
    """GET: the confirmation page (a POST form); POST: sign out (audited: ``logout``), then the
    signed-out page, or ``next`` if it is a path on this site."""

    template_name = "accounts/logged_out.html"
    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return render(request, "accounts/logout.html", {"next": self.get_redirect_url()})

    def get_redirect_url(self) -> str:
        nxt = self.request.POST.get("next") if self.request.method == "POST" else self.request.GET.get("next")
        return safe_local_path(str(nxt or ""))
