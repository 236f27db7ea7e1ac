"""Login, rate-limited per network and per account before any password is checked."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from authserver.netaddr import client_address, client_network
from authserver.ratelimit.limiter import enforce, note


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Fails closed (503) if the limiter's store is down: guessing passwords must never be
        # unlimited (ASVS 6.3). The account key is the submitted name, existing or not, so the
        # limit says nothing about whether the account exists.
        note(request, enforce("login.ip", client_network(client_address(request.META))))
        username = str(request.POST.get("username", ""))[:150].strip().lower()
        note(request, enforce("login.account", username or "-"))
        return super().post(request, *args, **kwargs)
