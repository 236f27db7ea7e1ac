"""Admin for API keys and compromise responses.

Keys are issued, rotated, suspended, resumed and revoked only through :mod:`keys.services`, like
the CLI does. The plaintext key exists only in the body of the one response that answers the
issuing (or rotating) POST, sent with ``Cache-Control: no-store``: never in a URL, the session, a
message or a log entry. The digest is never shown; keys are identified by their hint.

A key's policy (scopes, audiences, allowed IPs, rate limit, quota, expiry) is fixed when it is
issued: the change page is read-only and refuses POSTs. Every lifecycle action is a POST with a
CSRF token that needs ``keys.change_apikey``; the GET of a confirmation page changes nothing.

The compromise response ("revoke every key and token of a client") is a separate view of this
admin, ``admin:keys_apikey_compromise`` (``keys/apikey/compromise/<client pk>/``), reachable from a
key, from the key list filtered by client, and as an action on selected keys. It needs both
``keys.change_apikey`` and ``clients.change_client``, since it also revokes the client's tokens.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.adminkit import add_form_context, already_done, mark_done, once_token
from clients.models import Client
from keys import policy
from keys.charts import usage_series
from keys.forms import ApiKeyCreationForm, RotateKeyForm, format_duration
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse, CompromiseResponseStatus

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# Submissions that showed a key are remembered (one-time form token -> key pk) so that reloading
# the page that showed it, or going back to it, cannot issue or rotate a second time: the browser
# resubmits the same token and is sent to the key instead. Never the key itself.
DONE_KEY = "authserver_admin_keys_done"  # see authserver.adminkit


def _when(value: Any, *, utc: bool = False) -> str:
    if value is None:
        return "—"
    text = value.strftime("%Y-%m-%d %H:%M") + (" UTC" if utc else "")
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), text)


def _period(seconds: int | None) -> str:
    names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    if seconds in names:
        return names[seconds]
    return format_duration(seconds or 0)


def effective_status(key: ApiKey, now: Any = None) -> tuple[str, str]:
    """``(css class, label)`` of what verification does with the key *now*.

    The stored status lags behind in three cases that jobs record later: the expiry passed, the
    grace period after a rotation ended, or a compromise response revoked the client's keys.
    """
    now = now or timezone.now()
    if key.status in {ApiKeyStatus.REVOKED, ApiKeyStatus.EXPIRED}:
        return key.status, key.get_status_display()
    cutoff = key.client.credentials_revoked_at
    if cutoff is not None and key.created <= cutoff:
        return "revoked", "Revoked (compromise response)"
    if key.status != ApiKeyStatus.ACTIVE:
        return key.status, key.get_status_display()
    if key.expires <= now:
        return "expired", "Expired"
    if key.grace_ends is not None:
        if key.grace_ends <= now:
            return "revoked", "Revoked (rotated; grace ended)"
        return "rotated", f"Rotated: works until {key.grace_ends:%Y-%m-%d %H:%M} UTC"
    return "active", "Active"


def _status_badge(key: ApiKey, *, short: bool = False) -> str:
    css, label = effective_status(key)
    if short and ":" in label:  # the list keeps one word; the rest is in the tooltip
        return format_html(
            '<span class="as-status as-status-{}" title="{}">{}</span>', css, label, label.partition(":")[0]
        )
    if short and " (" in label:
        return format_html(
            '<span class="as-status as-status-{}" title="{}">{}</span>', css, label, label.partition(" (")[0]
        )
    return format_html('<span class="as-status as-status-{}">{}</span>', css, label)


def _audience(uri: str) -> str:
    """An audience URI that may break after its scheme and before path segments, never mid-host."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return format_html("{}", uri)
    host, slash, path_ = rest.partition("/")
    return format_html("{}://<wbr>{}{}", scheme, host, format_html("<wbr>/{}", path_) if slash else "")


def _live_credentials(client: Client) -> dict[str, int]:
    now = timezone.now()
    access, refresh, grants = get_access_token_model(), get_refresh_token_model(), get_grant_model()
    return {
        "api_keys": ApiKey.objects.filter(
            client=client, status__in=[ApiKeyStatus.ACTIVE, ApiKeyStatus.SUSPENDED], expires__gt=now
        ).count(),
        "access_tokens": access.objects.filter(application=client, expires__gt=now).count(),
        "refresh_tokens": refresh.objects.filter(application=client, revoked__isnull=True).count(),
        "authorization_codes": grants.objects.filter(application=client, used__isnull=True, expires__gt=now).count(),
    }


class OnlyDeletedWithTheirClient:
    """Keys are revoked, never deleted by hand: deleting a key row skips the revocation fan-out
    (cached answers would keep it working) and erases the audit trail. Compromise responses are
    the audit trail. So this admin offers no delete at all.

    Deleting the *client* still removes them (an explicit decision), and the client admin asks
    every related model's admin for delete permission while collecting what goes with it; there,
    and only there, defer to the model's delete permission so that decision isn't blocked.
    """

    opts: Any

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        match = getattr(request, "resolver_match", None)
        url_name = getattr(match, "url_name", "") or ""
        if url_name.startswith(f"{self.opts.app_label}_"):
            return False  # any view of this app's admins
        return super().has_delete_permission(request, obj)  # type: ignore[misc]


class ClientFilter(admin.RelatedOnlyFieldListFilter):
    """Clients that own something here, by name (client IDs are 40 characters; they show on hover)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[Any]:
        pks = model_admin.get_queryset(request).values_list(f"{field.name}__pk", flat=True).distinct()
        clients = Client.objects.filter(pk__in=pks).order_by("name", "client_id")
        return [(c.pk, c.name or c.client_id) for c in clients]


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    @staticmethod
    def soon() -> timedelta:
        return timedelta(seconds=settings.API_KEY_EXPIRY_WARNING_SECONDS)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        days = self.soon().days
        return [
            ("expired", "Expired"),
            ("soon", f"Expiring within {days} day{'s' if days != 1 else ''}"),
            ("later", "Later"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        value = self.value()
        if value == "expired":
            return queryset.filter(expires__lte=now)
        if value == "soon":
            return queryset.filter(expires__gt=now, expires__lte=now + self.soon())
        if value == "later":
            return queryset.filter(expires__gt=now + self.soon())
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(OnlyDeletedWithTheirClient, admin.ModelAdmin):
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
        return _status_badge(obj, short=True)

    @admin.display(description="status")
    def status_display(self, obj: ApiKey) -> str:
        return _status_badge(obj)

    @admin.display(description="scopes", ordering="scope")
    def scope_display(self, obj: ApiKey) -> str:
        scopes = obj.scope.split()
        return format_html_join(mark_safe(" "), "<code>{}</code>", ((s,) for s in scopes)) or "— (none)"

    @admin.display(description="audiences")
    def audiences_display(self, obj: ApiKey) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((_audience(a),) for a in obj.audiences or [])) or ("— (none)")

    @admin.display(description="expires", ordering="expires")
    def expires_display(self, obj: ApiKey) -> str:
        expires = obj.expires
        return format_html(
            '<time datetime="{}" title="{} UTC">{}</time>',
            expires.isoformat(),
            expires.strftime("%Y-%m-%d %H:%M"),
            expires.strftime("%Y-%m-%d"),
        )

    @admin.display(description="last used", ordering="last_used")
    def last_used_display(self, obj: ApiKey) -> str:
        if obj.last_used is None:
            return "never"
        if obj.last_used_ip:
            return format_html('{}<br><span class="as-quiet">from</span> {}', _when(obj.last_used), obj.last_used_ip)
        return _when(obj.last_used)

    @admin.display(description="uses", ordering="uses")
    def uses_display(self, obj: ApiKey) -> str:
        if obj.quota:
            return format_html('{}<br><span class="as-quiet">of {}</span>', f"{obj.uses:,}", f"{obj.quota:,}")
        return f"{obj.uses:,}"

    # -- detail (read-only) ------------------------------------------------------------------------
    @admin.display(description="created")
    def created_at(self, obj: ApiKey) -> str:
        return _when(obj.created, utc=True)

    @admin.display(description="created by")
    def created_by_display(self, obj: ApiKey) -> str:
        return obj.created_by_label or "—"

    @admin.display(description="expires")
    def expires_at(self, obj: ApiKey) -> str:
        return _when(obj.expires, utc=True)

    @admin.display(description="grace period ends")
    def grace_ends_at(self, obj: ApiKey) -> str:
        return _when(obj.grace_ends, utc=True)

    @admin.display(description="suspended")
    def suspended_at(self, obj: ApiKey) -> str:
        return _when(obj.suspended, utc=True)

    @admin.display(description="revoked")
    def revoked_at(self, obj: ApiKey) -> str:
        return _when(obj.revoked, utc=True)

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
        if not obj.rate_limit:
            return "none"
        return f"{obj.rate_limit:,} requests per {_period(obj.rate_limit_period)}"

    @admin.display(description="quota")
    def quota_display(self, obj: ApiKey) -> str:
        return f"{obj.quota:,} requests in total" if obj.quota else "unlimited"

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

    # -- permissions -----------------------------------------------------------------------------
    def has_compromise_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request) and request.user.has_perm("clients.change_client")

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

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def _change_url(self, key: ApiKey) -> str:
        return self._url("change", key.pk)

    def _base_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **extra}

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
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            done = already_done(request, DONE_KEY)
            if done is not None:
                return self._resubmitted(request, done, "This key was already issued")
            form = ApiKeyCreationForm(request.POST)
            if form.is_valid():
                issued = form.create(actor=request.user)
                if issued is not None:
                    key, plaintext = issued
                    self.log_addition(request, key, [{"added": {}}])
                    mark_done(request, DONE_KEY, key.pk)
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

    def _key_response(
        self, request: HttpRequest, key: ApiKey, plaintext: str, *, title: str, previous: ApiKey | None = None
    ) -> HttpResponse:
        """The one and only response that carries a plaintext key."""
        context = self._base_context(
            request,
            title,
            key=key,
            original=key,
            plaintext=plaintext,
            previous=previous,
            rate_limit=self.rate_limit_display(key),
            quota=self.quota_display(key),
            change_url=self._change_url(key),
        )
        response = TemplateResponse(request, "admin/keys/apikey/key_once.html", context)
        for name, value in NO_STORE.items():
            response[name] = value
        return response

    def _resubmitted(self, request: HttpRequest, pk: str, what: str) -> HttpResponse:
        self.message_user(
            request,
            f"{what}; the key was shown once and cannot be shown again. Rotate it if it was lost.",
            messages.WARNING,
        )
        return HttpResponseRedirect(self._url("change", pk))

    # -- change (read-only) ----------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        if request.method not in {"GET", "HEAD"}:
            # The policy is immutable; every change is one of the lifecycle views below.
            return HttpResponseNotAllowed(["GET"])
        extra_context = dict(extra_context or {})
        key = self.get_object(request, unquote(object_id))
        if key is not None:
            extra_context.update(self._actions_context(request, key))
            extra_context.update(self._usage_context(key))
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

    @staticmethod
    def _usage_context(key: ApiKey) -> dict[str, Any]:
        hourly, daily = usage_series(key)
        charts = []
        for name, series, peak_format in (("hourly", hourly, "at %b %d %H:00"), ("daily", daily, "on %b %d")):
            peak = series.peak
            charts.append(
                {
                    "id": name,
                    "data": series,
                    "total_text": f"{series.total:,}",
                    "peak_text": f"{peak.requests:,} {peak.start.strftime(peak_format)}" if peak else "",
                }
            )
        return {
            "charts": charts,
            "usage_key": key,
            "uses_text": f"{key.uses:,}",
            "quota_text": f"{key.quota:,}" if key.quota else "",
        }

    def usage_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method not in {"GET", "HEAD"}:
            return HttpResponseNotAllowed(["GET"])
        key = self.get_object(request, unquote(object_id))
        if key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, key):
            raise PermissionDenied
        context = self._base_context(
            request,
            "API key usage",
            key=key,
            original=key,
            change_url=self._change_url(key),
            **self._usage_context(key),
        )
        return TemplateResponse(request, "admin/keys/apikey/usage.html", context)

    # -- lifecycle -------------------------------------------------------------------------------
    def _key_for_change(self, request: HttpRequest, object_id: str) -> ApiKey | HttpResponse:
        key = self.get_object(request, unquote(object_id))
        if key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        return key

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from keys.services import api_key_rotate

        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        key = self._key_for_change(request, object_id)
        if isinstance(key, HttpResponse):
            return key
        if request.method == "POST":
            done = already_done(request, DONE_KEY)
            if done is not None:
                return self._resubmitted(request, done, "This key was already rotated")
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
                mark_done(request, DONE_KEY, new.pk)
                return self._key_response(request, new, plaintext, title="API key rotated", previous=old)

        context = self._base_context(
            request,
            "Rotate API key",
            key=key,
            original=key,
            form=form,
            once=once_token(request),
            rate_limit=self.rate_limit_display(key),
            quota=self.quota_display(key),
            lifetime_days=max(1, round((key.expires - key.created).total_seconds() / 86400)),
            change_url=self._change_url(key),
        )
        return TemplateResponse(request, "admin/keys/apikey/rotate.html", context)

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

    # -- compromise response ---------------------------------------------------------------------
    def _start_compromise(self, request: HttpRequest, clients: list[Client]) -> list[CompromiseResponse]:
        from keys.services import compromise_response_start

        started = []
        for client in clients:
            response = compromise_response_start(client=client, actor=request.user)
            self.log_change(request, client, "Compromise response: revoked every API key and token.")
            started.append(response)
        names = ", ".join(c.name or c.client_id for c in clients)
        self.message_user(
            request,
            f"Compromise response started for {names}: every API key and token issued up to now stopped working. "
            "A background job finishes the bookkeeping; follow it under Compromise responses.",
            messages.SUCCESS,
        )
        return started

    def _compromise_context(self, request: HttpRequest, clients: list[Client], **extra: Any) -> dict[str, Any]:
        rows = []
        for client in clients:
            rows.append(
                {
                    "client": client,
                    "live": _live_credentials(client),
                    "last": client.compromise_responses.order_by("-requested").first(),
                    "client_url": reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk]),
                    "keys_url": self._url("changelist") + f"?client__id__exact={client.pk}",
                    "confidential": client.client_type == Client.CLIENT_CONFIDENTIAL,
                }
            )
        title = "Compromise response"
        return self._base_context(
            request,
            title,
            rows=rows,
            changelist_url=self._url("changelist"),
            responses_url=reverse(f"{self.admin_site.name}:keys_compromiseresponse_changelist"),
            **extra,
        )

    def compromise_view(self, request: HttpRequest, client_pk: int) -> HttpResponse:
        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        if not self.has_compromise_permission(request):
            raise PermissionDenied
        client = Client.objects.filter(pk=client_pk).first()
        if client is None:
            self.message_user(request, "No such client.", messages.WARNING)
            return HttpResponseRedirect(self._url("changelist"))
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            self._start_compromise(request, [client])
            return HttpResponseRedirect(self._url("changelist") + f"?client__id__exact={client.pk}")
        context = self._compromise_context(request, [client], cancel_url=request.GET.get("back") or "")
        if not context["cancel_url"].startswith("/"):
            context["cancel_url"] = self._url("changelist") + f"?client__id__exact={client.pk}"
        return TemplateResponse(request, "admin/keys/compromise.html", context)

    @admin.action(
        description="Compromise response: revoke all keys and tokens",
        permissions=["compromise"],
    )
    def compromise_response(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        clients = list(Client.objects.filter(pk__in=queryset.values("client_id")).order_by("name", "client_id"))
        if request.POST.get("confirm") == "yes":
            self._start_compromise(request, clients)
            return None  # back to the list, filters kept
        context = self._compromise_context(
            request,
            clients,
            selected=[str(pk) for pk in queryset.values_list("pk", flat=True)],
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            select_across=request.POST.get("select_across", "0"),
            cancel_url="",
        )
        return TemplateResponse(request, "admin/keys/compromise.html", context)


@admin.register(CompromiseResponse)
class CompromiseResponseAdmin(OnlyDeletedWithTheirClient, admin.ModelAdmin):
    list_display = (
        "client_display",
        "requested_display",
        "requested_by",
        "status_display",
        "counts_display",
        "finished_display",
    )
    list_filter = ("status", ("client", ClientFilter))
    list_select_related = ("client",)
    search_fields = ("client__client_id", "client__name", "requested_by")
    ordering = ("-requested",)
    fields = ("client", "requested", "requested_by", "status_display", "heartbeat", "finished", "counts_display")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="client", ordering="client__name")
    def client_display(self, obj: CompromiseResponse) -> str:
        client = obj.client
        return format_html('<span title="{}">{}</span>', client.client_id, client.name or client.client_id)

    @admin.display(description="requested", ordering="requested")
    def requested_display(self, obj: CompromiseResponse) -> str:
        return _when(obj.requested)

    @admin.display(description="finished", ordering="finished")
    def finished_display(self, obj: CompromiseResponse) -> str:
        return _when(obj.finished)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: CompromiseResponse) -> str:
        css = {CompromiseResponseStatus.DONE: "active", CompromiseResponseStatus.RUNNING: "rotated"}.get(
            obj.status, "suspended"
        )
        return format_html('<span class="as-status as-status-{}">{}</span>', css, obj.get_status_display())

    @admin.display(description="revoked")
    def counts_display(self, obj: CompromiseResponse) -> str:
        counts = obj.counts or {}
        labels = (
            ("api_keys", "API key", "API keys"),
            ("access_tokens", "access token", "access tokens"),
            ("refresh_tokens", "refresh token", "refresh tokens"),
            ("authorization_codes", "authorization code", "authorization codes"),
        )
        if not counts and obj.status == CompromiseResponseStatus.PENDING:
            return "not recorded yet (everything already stopped working when it was requested)"
        parts = [f"{counts.get(k, 0):,} {ngettext(one, many, counts.get(k, 0))}" for k, one, many in labels]
        return ", ".join(parts) + ("" if obj.status == CompromiseResponseStatus.DONE else " so far")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {"title": "Compromise responses", **(extra_context or {})})
