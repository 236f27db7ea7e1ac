"""The password step: the same limits as ``/accounts/login/`` (per network and per account, before any
password is checked, failing closed), then the next stage. Logout and the password change."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from authserver.audit.context import request_personal
from authserver.audit.services import audit_record
from authserver.netaddr import client_address, client_network
from authserver.staff import selectors, services
from authserver.staff.stages import stage_url
from authserver.staff.stepup import is_fresh, step_up
from authserver.staff.views.common import Refused, context, limit, onward, page, wrong_stage


class StaffAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter the correct username and password for a staff account. "
                         "Note that both fields may be case-sensitive.",
    }

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not user.is_staff:
            audit_record(event="staff.login.refused", outcome="failure", actor=f"user:{user.pk}",
                         subject=f"user:{user.pk}", details={"reason": "not_staff"},
                         personal=request_personal(self.request))
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                        params={"username": self.username_field.verbose_name})


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    if selectors.staff_is_staff(request.user) and request.method == "GET":
        return onward(request)
    form = StaffAuthenticationForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST":
        try:
            # Before any password is checked, as /accounts/login/ (authserver.accounts.views): the
            # account key is the submitted name, existing or not.
            limit(request, "login.ip", client_network(client_address(request.META)))
            username = str(request.POST.get("username", ""))[:150].strip().lower()
            limit(request, "login.account", username or "-")
        except Refused as refused:
            return refused.response
        if form.is_valid():  # login.success / login.failure are audited by Django's signals
            auth_login(request, form.get_user())
            return onward(request)
    next_url = request.POST.get("next") or request.GET.get("next", "")
    return page(request, "staff/login.html", context(
        request, "Log in", form=form, next=next_url, app_path=request.get_full_path(), username=""))


@csrf_protect
@never_cache
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        auth_logout(request)
        return HttpResponseRedirect(reverse("staff:login"))
    return page(request, "staff/logout.html", context(request, "Log out"))


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own ``/<ADMIN_PATH>/login/``: the staff login page instead."""
    return HttpResponseRedirect(stage_url("staff:login", request.GET.get("next")))


def admin_password_change(request: HttpRequest) -> HttpResponse:
    """The admin's own ``password_change/``: the staff page, which checks the stage and validators."""
    return HttpResponseRedirect(reverse("staff:password_change"))


@sensitive_post_parameters()
@csrf_protect
@never_cache
def password_change_view(request: HttpRequest) -> HttpResponse:
    # Forced (a one-time password): right after the password step. Otherwise a verified session
    # with a fresh second factor (step-up), like any other change of a credential.
    forced = bool(selectors.staff_is_staff(request.user) and selectors.staff_must_change_password(user=request.user))
    if not forced:
        wrong = wrong_stage(request, None)
        if wrong is not None:
            return wrong
        if not is_fresh(request):
            return step_up(request)
    form = PasswordChangeForm(request.user, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = form.save()  # Django's validators (AUTH_PASSWORD_VALIDATORS) ran in is_valid()
        update_session_auth_hash(request, user)
        services.staff_password_change_done(user=user)
        return onward(request)
    return page(request, "staff/password_change.html", context(
        request, "Choose a new password" if forced else "Change your password", form=form, forced=forced,
        admin_nav=not forced, next=request.GET.get("next", "")))
