"""The compromise response: revoke every API key and token of a client at once.

A separate view of the key admin, ``admin:keys_apikey_compromise``
(``keys/apikey/compromise/<client pk>/``), reachable from a key, from the key list filtered by
client, and as an action on selected keys. It needs both ``keys.change_apikey`` and
``clients.change_client``, since it also revokes the client's tokens. The responses it starts are
listed, read-only, by :class:`CompromiseResponseAdmin`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.staff.stepup import fresh_factor_required
from clients.models import Client
from keys.admin.base import ApiKeyAdminBase, OnlyDeletedWithTheirClient
from keys.admin.display import when
from keys.admin.filters import ClientFilter
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse, CompromiseResponseStatus


def live_credentials(client: Client) -> dict[str, int]:
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


class CompromiseViews(ApiKeyAdminBase):
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
                    "live": live_credentials(client),
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

    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
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
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
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
        return when(obj.requested)

    @admin.display(description="finished", ordering="finished")
    def finished_display(self, obj: CompromiseResponse) -> str:
        return when(obj.finished)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: CompromiseResponse) -> str:
        css_by_status: dict[str, str] = {
            CompromiseResponseStatus.DONE: "active",
            CompromiseResponseStatus.RUNNING: "rotated",
        }
        css = css_by_status.get(obj.status, "suspended")
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
