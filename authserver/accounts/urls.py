from django.urls import path

from authserver.accounts.views import LoginView
from authserver.accounts.views.pages import LogoutView
from authserver.handlers import allow_methods

app_name = "accounts"

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    # GET asks, POST (with the CSRF token) signs out; any other method is a 405 page.
    path("logout/", allow_methods(LogoutView.as_view(), "GET", "HEAD", "POST", browser=True), name="logout"),
]
