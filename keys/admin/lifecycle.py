"""A key's lifecycle in the admin: rotate, revoke, suspend and resume.

Each is a POST with a CSRF token that needs ``keys.change_apikey`` and goes through
:mod:`keys.services`; the GET of a confirmation page changes nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse

from authserver.adminkit import once_token
from authserver.staff.stepup import fresh_factor_required
from keys import policy
from keys.admin.base import ApiKeyAdminBase
from keys.admin.display import effective_status, quota_text, rate_limit_text
from keys.forms import RotateKeyForm, format_duration
from keys.models import ApiKey, ApiKeyStatus


class ApiKeyLifecycleViews(ApiKeyAdminBase):
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from keys.services import api_key_rotate

        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        key = self._key_for_change(request, object_id)
        if isinstance(key, HttpResponse):
            return key
        if request.method == "POST":
            done = self.once_already_done(request)
            if done is not None:
                return self.once_resubmitted(request, done, "This key was already rotated")
        css, label = effective_status(key)
        if css != "active":
            self.message_user(request, f"Only an active key can be rotated; this one is: {label}.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(key))

        form = RotateKeyForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            grace = form.cleaned_data["grace"]
            try:
                new, plaintext = api_key_rotate(key=key, grace=grace, actor=request.user)
            except policy.KeyPolicyError as exc:
                form.add_error(None, str(exc))
            else:
                old = ApiKey.objects.select_related("client").get(pk=key.pk)
                self.log_change(
                    request,
                    old,
                    f"Rotated (grace period {format_duration(int(grace.total_seconds()))}); successor {new.hint}.",
                )
                self.log_addition(request, new, [{"added": {}}])
                self.once_mark_done(request, new.pk)
                return self._key_response(request, new, plaintext, title="API key rotated", previous=old)

        context = self._base_context(
            request,
            "Rotate API key",
            key=key,
            original=key,
            form=form,
            once=once_token(request),
            rate_limit=rate_limit_text(key),
            quota=quota_text(key),
            lifetime_days=max(1, round((key.expires - key.created).total_seconds() / 86400)),
            change_url=self._change_url(key),
        )
        return TemplateResponse(request, "admin/keys/apikey/rotate.html", context)

    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from keys.services import api_key_revoke

        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        key = self._key_for_change(request, object_id)
        if isinstance(key, HttpResponse):
            return key
        if key.status == ApiKeyStatus.REVOKED:
            self.message_user(request, "This key is already revoked.", messages.INFO)
            return HttpResponseRedirect(self._change_url(key))
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                api_key_revoke(key=key, actor=request.user)
            except policy.KeyPolicyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.log_change(request, key, "Revoked.")
                self.message_user(
                    request, f"The API key {key} is revoked; it stopped working immediately.", messages.SUCCESS
                )
            return HttpResponseRedirect(self._change_url(key))
        context = self._base_context(
            request,
            "Revoke API key",
            key=key,
            original=key,
            successor=ApiKey.objects.filter(rotated_from=key).first(),
            change_url=self._change_url(key),
        )
        return TemplateResponse(request, "admin/keys/apikey/revoke.html", context)

    def _status_change(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        from keys.services import api_key_resume, api_key_suspend

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        key = self._key_for_change(request, object_id)
        if isinstance(key, HttpResponse):
            return key
        change = {"suspend": api_key_suspend, "resume": api_key_resume}[verb]
        try:
            changed = change(key=key, actor=request.user)
        except policy.KeyPolicyError as exc:
            self.message_user(request, f"Cannot {verb} this key: {exc}.", messages.ERROR)
        else:
            done = {"suspend": "suspended", "resume": "resumed"}[verb]
            self.log_change(request, changed, f"{done.capitalize()}.")
            detail = (
                "it is refused until it is resumed."
                if verb == "suspend"
                else "it works again (unless it expired meanwhile)."
            )
            self.message_user(request, f"The API key {changed} is {done}: {detail}", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(key))

    def suspend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._status_change(request, object_id, "suspend")

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._status_change(request, object_id, "resume")
