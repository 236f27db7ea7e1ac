"""Admin for clients and scopes.

``ClientAdmin`` is registered by DOT itself (``OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]``), so
this module must not register ``Client``; it registers ``Scope`` only.

Secrets: creation and rotation go through ``clients.services``; the plaintext secret exists only
in the body of the one response that answers the POST (``Cache-Control: no-store``). It is never
put in a URL, the session, a message or a log entry, and the change form has no secret field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.adminkit import (
    OneTimeCredentialAdmin,
    add_form_context,
    learned_limit_text,
    name_auto_created_through_models,
    once_token,
    when,
)
from authserver.ratelimit.limiter import policy
from authserver.staff.stepup import fresh_factor_required
from clients.discovery.services import discovery_url_at_creation
from clients.forms import GRANT_TYPE_CHOICES, ClientChangeForm, ClientCreationForm
from clients.models import Client, RetiredClientSecret, Scope
from clients.registration.admin import SelfRegisteredAdmin, SelfRegisteredFilter
from clients.resource_paths.admin import ResourcePathsAdmin
from clients.webhooks.admin import ClientWebhookAdmin

# The admin has a handful of models and wide tables (40-character client IDs, audience URIs): the
# index page and breadcrumbs are navigation enough, the table gets the width.
admin.site.enable_nav_sidebar = False
admin.site.site_url = None  # no public site to "view": this server has no home page
admin.site.site_header = admin.site.site_title = "authserver admin"
name_auto_created_through_models()


def _default_grace_hours() -> int:
    return max(0, settings.CLIENT_SECRET_GRACE_SECONDS // 3600)


class RotateSecretForm(forms.Form):
    grace_hours = forms.IntegerField(
        label="Grace period (hours)",
        min_value=0,
        max_value=30 * 24,
        initial=_default_grace_hours,
        help_text="How long the current secret keeps working next to the new one, so deployed "
        "services can switch over. 0 revokes it immediately. At most 720 hours (30 days).",
    )


class GrantTypeFilter(admin.SimpleListFilter):
    title = "grant type"
    parameter_name = "grant_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, value) for value, _ in GRANT_TYPE_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> QuerySet[Client]:
        value = self.value()
        if not value:
            return queryset
        # JSONField "contains" is not portable to SQLite; client lists are small, filter in Python.
        ids = [pk for pk, grants in queryset.values_list("pk", "grant_types") if value in (grants or [])]
        return queryset.filter(pk__in=ids)


class RetiredClientSecretInline(admin.TabularInline):
    model = RetiredClientSecret
    fields = ("hint", "retired", "expires", "status")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-retired",)
    verbose_name = "retired secret"
    verbose_name_plural = "Retired secrets (still accepted until they expire)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status")
    def status(self, obj: RetiredClientSecret) -> str:
        return "accepted" if obj.expires > timezone.now() else "expired"


class ClientAdmin(ResourcePathsAdmin, ClientWebhookAdmin, SelfRegisteredAdmin, OneTimeCredentialAdmin):
    form = ClientChangeForm
    # Submissions that showed a secret are remembered so that reloading the secret page, or going
    # back to it, cannot create a second client or rotate again (see authserver.adminkit).
    once_bucket = "authserver_admin_done"
    once_shown_advice = "its secret was shown once and cannot be shown again. Rotate the secret if it was lost."
    list_display = (
        "name",
        "registration_display",
        "client_id",
        "client_type",
        "grant_types_display",
        "audiences_display",
        "secret_hint",
        "learned_limit",
        "created_display",
    )
    list_display_links = ("name", "client_id")
    list_filter = ("client_type", GrantTypeFilter, SelfRegisteredFilter, "is_resource_server", "remember_consent",
                   "allowed_scopes")
    search_fields = ("name", "client_id", "audience")
    ordering = ("-created",)
    readonly_fields = ("client_id", "client_type", "client_secret_hint", "client_secret_rotated", "created", "updated",
                       "learned_limit", "webhook_signing")
    fieldsets = (
        (None, {"fields": ("name", "client_id", "client_type", "client_secret_hint", "client_secret_rotated")}),
        ("Grants and redirects", {"fields": ("grant_types", "redirect_uris")}),
        ("Scopes and audiences", {"fields": ("allowed_scopes", "allowed_audiences", "other_audiences",
                                             "allow_unregistered_audience")}),
        ("Resource server", {"fields": ("is_resource_server", "audience")}),
        ("Tokens and consent", {"fields": ("access_token_lifetime", "refresh_token_lifetime", "remember_consent")}),
        ("Rate limit", {"fields": ("learned_limit",)}),
        ("Notifications", {"fields": ("webhook_url", "webhook_signing", "contact_email")}),
        ("Timestamps", {"fields": ("created", "updated"), "classes": ("collapse",)}),
    )
    add_fieldsets = (
        (None, {"fields": ("name", "client_type")}),
        ("Grants and redirects", {"fields": ("grant_types", "redirect_uris")}),
        ("Scopes and audiences", {"fields": ("allowed_scopes", "allowed_audiences", "other_audiences",
                                             "allow_unregistered_audience")}),
        ("Resource server", {"fields": ("resource_server_audience",)}),
        ("Tokens and consent", {"fields": ("access_token_lifetime", "remember_consent")}),
        ("Notifications", {"fields": ("webhook_url", "contact_email")}),
    )
    inlines = (RetiredClientSecretInline,)
    view_on_site = False  # DOT's get_absolute_url points at its own management views, not mounted here

    # -- list ----------------------------------------------------------------------------------
    @admin.display(description="grant types")
    def grant_types_display(self, obj: Client) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((g,) for g in obj.grant_types or [])) or "—"

    @admin.display(description="audiences")
    def audiences_display(self, obj: Client) -> str:
        # A resource server's own audience (what it introspects for), else the audiences the client
        # may get tokens for: either way what the row is about, never "-" for a client that has some.
        if obj.is_resource_server and obj.audience:
            return format_html('<span class="as-quiet">resource server:</span> {}', obj.audience)
        return format_html_join(mark_safe("<br>"), "{}", ((a,) for a in obj.allowed_audiences or [])) or "—"

    @admin.display(description="secret", ordering="client_secret_hint")
    def secret_hint(self, obj: Client) -> str:
        return obj.client_secret_hint or "—"

    @admin.display(description="learned token limit")
    def learned_limit(self, obj: Client) -> str:
        # Learned by anomaly detection (README, "Rate limits"); an explicit token.client policy wins.
        token_client = policy("token.client")
        explicit = f"token.client {token_client.limit}/{token_client.window}s" if token_client.explicit else None
        return learned_limit_text(f"client:{obj.client_id}", operator_limit=explicit)

    @admin.display(description="created", ordering="created")
    def created_display(self, obj: Client) -> str:
        return when(obj.created)

    # -- URLs ----------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        extra = [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name=f"{prefix}_rotate_secret",
            ),
            path(
                "<path:object_id>/revoke-tokens/",
                self.admin_site.admin_view(self.revoke_tokens_view),
                name=f"{prefix}_revoke_tokens",
            ),
        ]
        return extra + super().get_urls()

    def _change_url(self, client: Client) -> str:
        return reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk])

    def _secret_response(
        self, request: HttpRequest, client: Client, secret: str | None, *, title: str, rotated: bool,
        webhook_secret: str | None = None, discovery_url: str | None = None,
    ) -> HttpResponse:
        """The one and only response that carries a plaintext secret."""
        retired = list(client.retired_secrets.filter(expires__gt=timezone.now()).order_by("-retired"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "client": client,
            "secret": secret,
            "rotated": rotated,
            "retired": retired,
            "change_url": self._change_url(client),
            "webhook_secret": webhook_secret,
            "discovery_url": discovery_url,
        }
        return self.once_response(request, "admin/clients/client/secret_once.html", context)

    # -- add -----------------------------------------------------------------------------------
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            done = self.once_already_done(request)
            if done is not None:
                return self.once_resubmitted(request, done, "This client was already created")
            form = ClientCreationForm(request.POST)
            if form.is_valid():
                registered = form.register(actor=request.user)
                if registered is not None:
                    client, secret = registered
                    self.log_addition(request, client, [{"added": {}}])
                    self.once_mark_done(request, client.pk)
                    discovery = discovery_url_at_creation(client=client, actor=request.user)  # issue 15, C3
                    return self._secret_response(request, client, secret, title="Client created", rotated=False,
                                                 webhook_secret=form.webhook_secret, discovery_url=discovery)
        elif request.method == "GET":
            form = ClientCreationForm()
        else:
            return HttpResponseNotAllowed(["GET", "POST"])

        context = add_form_context(self, request, form, title="Add client", **(extra_context or {}))
        return self.render_change_form(request, context, add=True, form_url=form_url)

    # -- change ----------------------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context.update(
                {
                    "can_rotate_secret": obj.client_type == Client.CLIENT_CONFIDENTIAL
                    and self.has_change_permission(request, obj),
                    "can_revoke_tokens": self.has_change_permission(request, obj),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Tokens, codes and retired secrets have no delete permission of their own (they are
        # revoked, not deleted), but deleting their client is an explicit decision that removes
        # them all: don't let their admins block it.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        cascaded = {
            str(model._meta.verbose_name)
            for model in (get_access_token_model(), get_refresh_token_model(), get_grant_model(), RetiredClientSecret)
        }
        return deleted, model_count, perms_needed - cascaded, protected

    # -- rotate / revoke -------------------------------------------------------------------------
    def _client_for_change(self, request: HttpRequest, object_id: str) -> Client | HttpResponse:
        client: Client | None = self.get_object(request, unquote(object_id))
        if client is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        return client

    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from clients.services import ClientError, client_secret_rotate

        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        client = self._client_for_change(request, object_id)
        if isinstance(client, HttpResponse):
            return client
        if client.client_type != Client.CLIENT_CONFIDENTIAL:
            self.message_user(request, "Public clients have no secret to rotate.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(client))

        if request.method == "POST" and self.once_already_done(request) == str(client.pk):
            return self.once_resubmitted(request, client.pk, "The secret was already rotated")
        form = RotateSecretForm(request.POST if request.method == "POST" else None)
        again = self.once_again_refusal(request, "rotate_secret", client.pk, "The secret was rotated")
        if again:
            form.is_valid()
            form.add_error(None, again)
        elif request.method == "POST" and form.is_valid():
            hours = form.cleaned_data["grace_hours"]
            try:
                client, secret = client_secret_rotate(client=client, grace=timedelta(hours=hours), actor=request.user)
            except ClientError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(request, client, f"Rotated the client secret (grace period {hours} h).")
                self.once_mark_done(request, client.pk)
                self.once_mark_acted(request, "rotate_secret", client.pk)
                return self._secret_response(request, client, secret, title="Client secret rotated", rotated=True)

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Rotate client secret",
            "client": client,
            "original": client,
            "form": form,
            "once": once_token(request),
            "ask_again": bool(again),
            "retired": list(client.retired_secrets.filter(expires__gt=timezone.now()).order_by("-retired")),
            "change_url": self._change_url(client),
        }
        return TemplateResponse(request, "admin/clients/client/rotate_secret.html", context)

    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def revoke_tokens_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from clients.services import client_revoke_tokens

        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        client = self._client_for_change(request, object_id)
        if isinstance(client, HttpResponse):
            return client

        if request.method == "POST" and request.POST.get("confirm") == "yes":
            counts = client_revoke_tokens(client=client, actor=request.user)
            summary = "Revoked {} {}, {} {} and {} pending {}.".format(
                counts["access_tokens"],
                ngettext("access token", "access tokens", counts["access_tokens"]),
                counts["refresh_tokens"],
                ngettext("refresh token", "refresh tokens", counts["refresh_tokens"]),
                counts["authorization_codes"],
                ngettext("authorization code", "authorization codes", counts["authorization_codes"]),
            )
            self.log_change(request, client, summary)
            self.message_user(request, summary, messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(client))

        now = timezone.now()
        access, refresh, grants = get_access_token_model(), get_refresh_token_model(), get_grant_model()
        live = {
            "access_tokens": access.objects.filter(application=client, expires__gt=now).count(),
            "refresh_tokens": refresh.objects.filter(application=client, revoked__isnull=True).count(),
            "authorization_codes": grants.objects.filter(
                application=client, used__isnull=True, expires__gt=now
            ).count(),
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Revoke all tokens",
            "client": client,
            "original": client,
            "live": live,
            "change_url": self._change_url(client),
        }
        return TemplateResponse(request, "admin/clients/client/revoke_tokens.html", context)


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "client_count", "created")
    search_fields = ("name", "description")
    ordering = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scope]:
        scopes: QuerySet[Scope] = super().get_queryset(request)
        return scopes.annotate(_client_count=Count("clients", distinct=True))

    def get_readonly_fields(self, request: HttpRequest, obj: Scope | None = None) -> tuple[str, ...]:
        # Issued tokens carry scope names: renaming one would silently change what they grant.
        return ("name", "created") if obj is not None else ("created",)

    @admin.display(description="clients", ordering="_client_count")
    def client_count(self, obj: Scope) -> str:
        count = getattr(obj, "_client_count", 0)
        url = reverse(f"{self.admin_site.name}:clients_client_changelist") + f"?allowed_scopes__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

