"""``/<ADMIN_PATH>/security/passkeys/``: included before the admin's own URLs (authserver/urls.py)."""

from django.urls import path

from authserver.passkeys import views

app_name = "passkeys"

urlpatterns = [
    path("", views.passkey_list, name="list"),
    path("enrol/", views.enrol, name="enrol"),
    path("enrol/options/", views.enrol_options, name="enrol-options"),
    path("enrol/complete/", views.enrol_complete, name="enrol-complete"),
    path("verify/", views.verify, name="verify"),
    path("verify/options/", views.verify_options, name="verify-options"),
    path("verify/complete/", views.verify_complete, name="verify-complete"),
    path("<int:pk>/remove/", views.remove, name="remove"),
]
