"""Pieces shared by the admin pages that show a credential once (clients' secrets, API keys).

A submission that showed a credential is remembered (its one-time form token -> object pk, never
the credential) so that reloading that page, or going back to it, cannot create or rotate a second
time: the browser resubmits the same token and is sent to the object instead.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.admin import ModelAdmin, helpers
from django.http import HttpRequest

ONCE_FIELD = "_once"


def once_token(request: HttpRequest) -> str:
    """The form's one-time token: the one being resubmitted, or a fresh one."""
    return request.POST.get(ONCE_FIELD) or secrets.token_urlsafe(16)


def already_done(request: HttpRequest, bucket: str) -> str | None:
    """The pk (as text) a resubmitted one-time token already acted on, if any."""
    token = request.POST.get(ONCE_FIELD, "")
    return request.session.get(bucket, {}).get(token) if token else None


def mark_done(request: HttpRequest, bucket: str, pk: Any) -> None:
    token = request.POST.get(ONCE_FIELD, "")
    if token:
        done = dict(list(request.session.get(bucket, {}).items())[-49:])
        done[token] = str(pk)
        request.session[bucket] = done


def add_form_context(model_admin: ModelAdmin, request: HttpRequest, form: Any, *, title: str,
                     **extra: Any) -> dict[str, Any]:
    """The context Django's change_form template needs for a custom add form."""
    adminform = helpers.AdminForm(form, list(model_admin.add_fieldsets), {}, model_admin=model_admin)
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "adminform": adminform,
        "object_id": None,
        "original": None,
        "is_popup": False,
        "to_field": None,
        "media": model_admin.media + adminform.media,
        "inline_admin_formsets": [],
        "errors": helpers.AdminErrorList(form, []),
        "preserved_filters": model_admin.get_preserved_filters(request),
        "once": once_token(request),
        "show_save_and_add_another": False,
        "show_save_and_continue": False,
        **extra,
    }
