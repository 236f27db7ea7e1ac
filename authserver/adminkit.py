"""Pieces shared by the admin pages that show a credential once (clients' secrets, API keys).

The plaintext credential exists only in the body of the one response that answers the issuing
(or rotating) POST, sent with ``Cache-Control: no-store``: never in a URL, the session, a message
or a log entry (Sentry's "readable once, then gone"; ASVS 4.0 V8.2.1, no caching of sensitive data).

A submission that showed a credential is remembered (its one-time form token -> object pk, never
the credential) so that reloading that page, or going back to it, cannot create or rotate a second
time: the browser resubmits the same token and is sent to the object instead.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join

from authserver import counters
from authserver.http import NO_STORE

if TYPE_CHECKING:
    from django.db.models.options import Options

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


def mark_acted(request: HttpRequest, bucket: str, key: str) -> None:
    """Remember when this session did ``key`` (an action on an object, e.g. ``rotate_secret:7``)."""
    at = dict(list(request.session.get(f"{bucket}:at", {}).items())[-49:])
    at[key] = int(time.time())
    request.session[f"{bucket}:at"] = at


#: How long a second rotation of the same object from the same session asks to be confirmed.
AGAIN_SECONDS = 15 * 60
AGAIN_FIELD = "_again"


def acted_recently(request: HttpRequest, bucket: str, key: str) -> int | None:
    """Seconds since this session did ``key`` (within AGAIN_SECONDS), else None.

    Chromium fetches a ``no-store`` form again on Back, with a fresh one-time token, while it
    restores what was typed: the token alone cannot tell Back-then-Save from a new decision.
    """
    at = request.session.get(f"{bucket}:at", {}).get(key)
    if at is None:
        return None
    ago = int(time.time()) - int(at)
    return ago if 0 <= ago < AGAIN_SECONDS else None


def add_form_context(model_admin: OneTimeCredentialAdmin, request: HttpRequest, form: Any, *, title: str,
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


class OneTimeCredentialAdmin(ModelAdmin):
    """A model admin whose add or rotate POST answers with a credential shown once.

    Subclasses name their session bucket and the advice given when a resubmission finds the
    credential already shown; they call :meth:`once_already_done` before acting on a POST,
    :meth:`once_mark_done` after, and answer with :meth:`once_response`.
    """

    #: The fieldsets of the custom add form (:func:`add_form_context`), like UserAdmin's.
    add_fieldsets: Sequence[tuple[str | None, dict[str, Any]]]

    if TYPE_CHECKING:
        # Django's ModelAdmin has it (the "doesn't exist" message and redirect of its own change
        # views); django-stubs leave the private method out.
        def _get_obj_does_not_exist_redirect(
            self, request: HttpRequest, opts: Options[Any], object_id: str
        ) -> HttpResponse: ...

    #: Session key of the one-time tokens already acted on (one per admin, so a client's token
    #: never sends the browser to a key).
    once_bucket: str
    #: Follows "<what was done>; " in the warning shown when the credential was already shown.
    once_shown_advice: str

    def once_already_done(self, request: HttpRequest) -> str | None:
        return already_done(request, self.once_bucket)

    def once_mark_done(self, request: HttpRequest, pk: Any) -> None:
        mark_done(request, self.once_bucket, pk)

    def once_mark_acted(self, request: HttpRequest, action: str, pk: Any) -> None:
        mark_acted(request, self.once_bucket, f"{action}:{pk}")

    def once_again_refusal(self, request: HttpRequest, action: str, pk: Any, what: str) -> str | None:
        """Why a POST must not do ``action`` on ``pk`` again without the "again" box ticked, or None.

        A rotation this session made minutes ago is most likely the same form sent twice (Back,
        then the button again): it is refused with this message until the box says otherwise.
        """
        if request.method != "POST" or request.POST.get(AGAIN_FIELD) == "yes":
            return None
        ago = acted_recently(request, self.once_bucket, f"{action}:{pk}")
        if ago is None:
            return None
        minutes = "less than a minute" if ago < 60 else f"{ago // 60} min"
        return (f"{what} {minutes} ago from this browser; nothing was changed now. If this form was sent again "
                "(Back, then the button), the new secret is the one shown then. To rotate once more, tick "
                "“Yes, rotate again” and submit.")

    def once_response(self, request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
        """The one and only response that carries a plaintext credential."""
        response = TemplateResponse(request, template, context)
        for name, value in NO_STORE.items():
            response[name] = value
        return response

    def once_resubmitted(self, request: HttpRequest, pk: Any, what: str) -> HttpResponse:
        """A resubmitted form whose credential was already shown: say so and go to the object."""
        self.message_user(request, f"{what}; {self.once_shown_advice}", messages.WARNING)
        opts = self.opts
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[pk])
        )


def when(value: Any) -> str:
    """A date-time as every admin page shows it (authserver.formats: ``2026-12-02 06:22 UTC``),
    machine-readable in the ``<time>`` element; "—" for none."""
    if value is None:
        return "—"
    return format_html('<time datetime="{}">{}</time>', value.isoformat(),
                       formats.date_format(timezone.localtime(value), "DATETIME_FORMAT"))


def facts(mapping: Any) -> str:
    """A JSON object (an anomaly's evidence, ...) as a definition list people can read: keys as
    words, ISO date-times in the admin's format, nested objects nested; never a Python repr."""
    if not isinstance(mapping, dict) or not mapping:
        return _fact(mapping)
    rows = ((str(key).replace("_", " "), _fact(value)) for key, value in mapping.items())
    return format_html('<dl class="as-facts">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows))


def _fact(value: Any) -> str:
    if isinstance(value, dict) and value:
        return facts(value)
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return format_html_join(", ", "{}", ((_fact(item),) for item in value))
    if isinstance(value, str) and value[4:5] == "-" and "T" in value:
        moment = parse_datetime(value)
        if moment is not None:
            return when(moment)
    return format_html("{}", value)


def _through_str(row: Any) -> str:
    source, target = (f for f in row._meta.fields if f.is_relation)
    return f"{getattr(row, target.name)} for {getattr(row, source.name)}"


def name_auto_created_through_models() -> None:
    """Readable names for Django's implicit many-to-many rows ("scope ai.infer for Acme (cid)"
    instead of "Client_allowed_scopes object (7)"): the admin lists them in delete confirmations."""
    from django.apps import apps

    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if not opts.auto_created or len([f for f in opts.fields if f.is_relation]) != 2:
            continue
        source, target = (f.related_model._meta for f in opts.fields if f.is_relation
                           and isinstance(f.related_model, type))
        opts.verbose_name = f"{target.verbose_name} of a {source.verbose_name}"
        opts.verbose_name_plural = f"{target.verbose_name_plural} of a {source.verbose_name}"
        model.__str__ = _through_str  # type: ignore[method-assign]


def learned_limit_text(subject: str, *, operator_limit: str | None) -> str:
    """What the admin shows of a credential's learned per-minute limit and whether it applies (the
    value the anomaly job published: authserver.counters.applicable_limit; README, "Rate limits").

    ``operator_limit``: the limit the operator set for the credential, if any: it wins over a
    learned limit, not over a pin or an anomaly's action.
    """
    published = counters.effective_limit(subject)
    if not published:
        return "none learned yet"
    limit = f"{abs(published):,}/min"
    if published < 0:
        return f"{limit} (pinned or an anomaly's action: applies)"
    if operator_limit:
        return f"{limit} learned (not applied: the operator's {operator_limit} wins)"
    return f"{limit} learned (applies)"
