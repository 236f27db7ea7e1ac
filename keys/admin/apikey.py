"""The API key admin: the key list, the issuing form and the read-only key page.

Keys are issued, rotated, suspended, resumed and revoked only through :mod:`keys.services`, like
the CLI does. The plaintext key is shown once (:mod:`authserver.adminkit`); the digest is never
shown, keys are identified by their hint. A key's policy (scopes, audiences, allowed IPs, rate
limit, quota, expiry) is fixed when it is issued: the change page is read-only and refuses POSTs.
The lifecycle, usage and compromise-response views are mixins from their own modules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from authserver.adminkit import add_form_context, learned_limit_text
from authserver.staff.stepup import fresh_factor_required
from clients.models import Client
from keys.admin.base import OnlyDeletedWithTheirClient, shows_personal_data
from keys.admin.compromise import CompromiseViews
from keys.admin.display import audience, effective_status, quota_text, rate_limit_text, status_badge, when
from keys.admin.filters import ClientFilter, ExpiryFilter
from keys.admin.lifecycle import ApiKeyLifecycleViews
from keys.admin.usage import ApiKeyUsageViews
from keys.forms import ApiKeyCreationForm
from keys.models import ApiKey, ApiKeyStatus


@admin.register(ApiKey)
class ApiKeyAdmin(OnlyDeletedWithTheirClient, ApiKeyLifecycleViews, ApiKeyUsageViews, CompromiseViews):
    list_display = (
        "name",
        "hint_display",
        "client_display",
        "status_list_display",
        "scope_display",
        "audiences_display",
        "expires_display",
        "last_used_display",
        "uses_display",
        "learned_limit_display",
    )
    list_display_links = ("name",)
    list_filter = (("client", ClientFilter), "status", ExpiryFilter)
    list_select_related = ("client",)
    search_fields = ("name", "hint", "client__client_id", "client__name")
    search_help_text = "Search by key name, hint (its last characters), client ID or client name."
    ordering = ("-created",)
    list_per_page = 50
    empty_value_display = "—"
    actions = ["compromise_response"]
    fieldsets = (
        (
            None,
            {"fields": ("name", "hint_display", "client_link", "status_display", "created_at", "created_by_display")},
        ),
        (
            "Policy",
            {
                "description": "A key's policy is fixed when the key is issued and cannot be edited. Rotating "
                "issues a successor with the same policy; to change the policy, issue a new key and revoke "
                "this one.",
                "fields": (
                    "scope_display",
                    "audiences_display",
                    "allowed_ips_display",
                    "rate_limit_display",
                    "learned_limit_display",
                    "quota_display",
                ),
            },
        ),
        (
            "Lifetime",
            {
                "fields": (
                    "expires_at",
                    "grace_ends_at",
                    "rotated_from_link",
                    "successor_link",
                    "suspended_at",
                    "revoked_at",
                )
            },
        ),
    )
    readonly_fields = (
        "name",
        "hint_display",
        "client_link",
        "status_display",
        "created_at",
        "created_by_display",
        "scope_display",
        "audiences_display",
        "allowed_ips_display",
        "rate_limit_display",
        "learned_limit_display",
        "quota_display",
        "expires_at",
        "grace_ends_at",
        "rotated_from_link",
        "successor_link",
        "suspended_at",
        "revoked_at",
    )
    add_fieldsets = (
        (None, {"fields": ("client", "name")}),
        (
            "Policy",
            {
                "description": "Fixed for the life of the key (rotation keeps it). The key can never exceed what "
                "its client is allowed.",
                "fields": ("scopes", "audiences", "allowed_ips", "expires_in", "rate_limit", "quota"),
            },
        ),
    )

    # -- list ----------------------------------------------------------------------------------
    @admin.display(description="hint", ordering="hint")
    def hint_display(self, obj: ApiKey) -> str:
        return format_html("<code>{}</code>", obj.hint)

    @admin.display(description="client", ordering="client__name")
    def client_display(self, obj: ApiKey) -> str:
        client = obj.client
        return format_html('<span title="{}">{}</span>', client.client_id, client.name or client.client_id)

    @admin.display(description="status", ordering="status")
    def status_list_display(self, obj: ApiKey) -> str:
        return status_badge(obj, short=True)

    @admin.display(description="status")
    def status_display(self, obj: ApiKey) -> str:
        return status_badge(obj)

    @admin.display(description="scopes", ordering="scope")
    def scope_display(self, obj: ApiKey) -> str:
        scopes = obj.scope.split()
        return format_html_join(mark_safe(" "), "<code>{}</code>", ((s,) for s in scopes)) or "— (none)"

    @admin.display(description="audiences")
    def audiences_display(self, obj: ApiKey) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((audience(a),) for a in obj.audiences or [])) or ("— (none)")

    @admin.display(description="expires", ordering="expires")
    def expires_display(self, obj: ApiKey) -> str:
        return when(obj.expires)

    @admin.display(description="last used", ordering="last_used")
    def last_used_display(self, obj: ApiKey) -> str:
        return "never" if obj.last_used is None else when(obj.last_used)

    @admin.display(description="last used", ordering="last_used")
    def last_used_from_display(self, obj: ApiKey) -> str:
        """With the caller's address: listed only for staff who may see personal data."""
        if obj.last_used is not None and obj.last_used_ip:
            return format_html('{}<br><span class="as-quiet">from</span> {}', when(obj.last_used), obj.last_used_ip)
        return self.last_used_display(obj)

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        if shows_personal_data(request):
            shown[shown.index("last_used_display")] = "last_used_from_display"
        return shown

    @admin.display(description="uses", ordering="uses")
    def uses_display(self, obj: ApiKey) -> str:
        if obj.quota:
            return format_html('{}<br><span class="as-quiet">of {}</span>', f"{obj.uses:,}", f"{obj.quota:,}")
        return f"{obj.uses:,}"

    # -- detail (read-only) ------------------------------------------------------------------------
    @admin.display(description="created")
    def created_at(self, obj: ApiKey) -> str:
        return when(obj.created, utc=True)

    @admin.display(description="created by")
    def created_by_display(self, obj: ApiKey) -> str:
        return obj.created_by_label or "—"

    @admin.display(description="expires")
    def expires_at(self, obj: ApiKey) -> str:
        return when(obj.expires, utc=True)

    @admin.display(description="grace period ends")
    def grace_ends_at(self, obj: ApiKey) -> str:
        return when(obj.grace_ends, utc=True)

    @admin.display(description="suspended")
    def suspended_at(self, obj: ApiKey) -> str:
        return when(obj.suspended, utc=True)

    @admin.display(description="revoked")
    def revoked_at(self, obj: ApiKey) -> str:
        return when(obj.revoked, utc=True)

    @admin.display(description="client")
    def client_link(self, obj: ApiKey) -> str:
        client = obj.client
        url = reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk])
        return format_html('<a href="{}">{}</a> <code>{}</code>', url, client.name, client.client_id)

    @admin.display(description="allowed IPs")
    def allowed_ips_display(self, obj: ApiKey) -> str:
        return format_html_join(mark_safe("<br>"), "<code>{}</code>", ((n,) for n in obj.allowed_ips or [])) or (
            "any address"
        )

    @admin.display(description="rate limit")
    def rate_limit_display(self, obj: ApiKey) -> str:
        return rate_limit_text(obj)

    @admin.display(description="learned limit")
    def learned_limit_display(self, obj: ApiKey) -> str:
        # Learned by anomaly detection (README, "Rate limits"); the key's own rate limit wins.
        return learned_limit_text(f"key:{obj.pk}", operator_limit=rate_limit_text(obj) if obj.rate_limit else None)

    @admin.display(description="quota")
    def quota_display(self, obj: ApiKey) -> str:
        return quota_text(obj)

    @admin.display(description="rotated from")
    def rotated_from_link(self, obj: ApiKey) -> str:
        return self._key_link(obj.rotated_from)

    @admin.display(description="successor")
    def successor_link(self, obj: ApiKey) -> str:
        return self._key_link(ApiKey.objects.filter(rotated_from=obj).first())

    def _key_link(self, key: ApiKey | None) -> str:
        if key is None:
            return "—"
        return format_html('<a href="{}">{}</a>', self._change_url(key), str(key))

    # -- actions -----------------------------------------------------------------------------------
    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # -- URLs ----------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        extra = [
            path("compromise/<int:client_pk>/", wrap(self.compromise_view), name=f"{prefix}_compromise"),
            path("<path:object_id>/rotate/", wrap(self.rotate_view), name=f"{prefix}_rotate"),
            path("<path:object_id>/revoke/", wrap(self.revoke_view), name=f"{prefix}_revoke"),
            path("<path:object_id>/suspend/", wrap(self.suspend_view), name=f"{prefix}_suspend"),
            path("<path:object_id>/resume/", wrap(self.resume_view), name=f"{prefix}_resume"),
            path("<path:object_id>/usage/", wrap(self.usage_view), name=f"{prefix}_usage"),
        ]
        return extra + super().get_urls()

    # -- list page -----------------------------------------------------------------------------
    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        extra_context = {"title": "API keys", **(extra_context or {})}
        client_pk = request.GET.get("client__id__exact", "")
        if client_pk.isdigit() and self.has_compromise_permission(request):
            client = Client.objects.filter(pk=int(client_pk)).first()
            if client is not None:
                extra_context["filtered_client"] = client
                extra_context["compromise_url"] = self._url("compromise", client.pk)
        if request.user.has_perm("keys.view_compromiseresponse"):
            extra_context["compromise_list_url"] = reverse(f"{self.admin_site.name}:keys_compromiseresponse_changelist")
        return super().changelist_view(request, extra_context)

    # -- add -----------------------------------------------------------------------------------
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            done = self.once_already_done(request)
            if done is not None:
                return self.once_resubmitted(request, done, "This key was already issued")
            form = ApiKeyCreationForm(request.POST)
            if form.is_valid():
                issued = form.create(actor=request.user)
                if issued is not None:
                    key, plaintext = issued
                    self.log_addition(request, key, [{"added": {}}])
                    self.once_mark_done(request, key.pk)
                    return self._key_response(request, key, plaintext, title="API key issued")
        elif request.method == "GET":
            initial = {}
            client = request.GET.get("client", "")
            if client.isdigit():
                initial["client"] = int(client)
            form = ApiKeyCreationForm(initial=initial)
        else:
            return HttpResponseNotAllowed(["GET", "POST"])

        context = add_form_context(self, request, form, title="Issue API key", client_policies=self._client_policies(),
                                   **(extra_context or {}))
        return self.render_change_form(request, context, add=True, form_url=form_url)

    @staticmethod
    def _client_policies() -> list[dict[str, Any]]:
        """What each client allows, shown under the add form (scopes are not filtered per client)."""
        clients = Client.objects.prefetch_related("allowed_scopes").order_by("name", "client_id")[:100]
        return [
            {
                "client": c,
                "scopes": sorted(s.name for s in c.allowed_scopes.all()),
                "audiences": list(c.allowed_audiences or []),
            }
            for c in clients
        ]

    # -- change (read-only) ----------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        if request.method not in {"GET", "HEAD"}:
            # The policy is immutable; every change is one of the lifecycle views (keys.admin.lifecycle).
            return HttpResponseNotAllowed(["GET"])
        extra_context = dict(extra_context or {})
        key = self.get_object(request, unquote(object_id))
        if key is not None:
            extra_context.update(self._actions_context(request, key))
            extra_context.update(self._usage_context(key), show_personal=shows_personal_data(request))
            extra_context.update(
                title="API key",
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
                show_delete=False,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def _actions_context(self, request: HttpRequest, key: ApiKey) -> dict[str, Any]:
        can_change = self.has_change_permission(request, key)
        usable = effective_status(key)[0] in {"active"}
        return {
            "can_rotate": can_change and usable,
            "can_suspend": can_change and key.status == ApiKeyStatus.ACTIVE,
            "can_resume": can_change and key.status == ApiKeyStatus.SUSPENDED,
            "can_revoke": can_change and key.status != ApiKeyStatus.REVOKED,
            "compromise_url": self._url("compromise", key.client_id) if self.has_compromise_permission(request) else "",
            "usage_url": self._url("usage", key.pk),
        }
