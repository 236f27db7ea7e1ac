from collections.abc import Callable
from typing import cast

from django.http import HttpResponse
from django.urls import path

from authserver.accounts.views import LoginView
from authserver.accounts.views.apps import connected_apps
from authserver.accounts.views.device import device
from authserver.accounts.views.pages import LogoutView
from authserver.handlers import allow_methods

app_name = "accounts"

# GET asks, POST (with the CSRF token) signs out; any other method is a 405 page.
logout = allow_methods(cast(Callable[..., HttpResponse], LogoutView.as_view()), "GET", "HEAD", "POST", browser=True)

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", logout, name="logout"),
    # Connected apps (issue 16): GET lists, POST (CSRF, field "client") revokes.
    path("apps", allow_methods(connected_apps, "GET", "HEAD", "POST", browser=True), name="apps"),
    # RFC 8628 §3.3: the verification_uri (GET asks for the code, POST checks it and decides).
    path("device", allow_methods(device, "GET", "HEAD", "POST", browser=True), name="device"),
]
