"""The staff plane, mounted at ``/<ADMIN_PATH>/security/`` before the admin (authserver.urls)."""

from django.urls import path

from authserver.staff.views import factor, login, security

app_name = "staff"

urlpatterns = [
    path("login/", login.login_view, name="login"),
    path("logout/", login.logout_view, name="logout"),
    path("password/", login.password_change_view, name="password_change"),
    path("verify/", factor.verify_view, name="verify"),
    path("enrol/", factor.enrol_view, name="enrol"),
    path("", security.security_view, name="security"),
    path("recovery-codes/", security.recovery_codes_view, name="recovery_codes"),
    path("remove/", security.remove_view, name="remove"),
]
