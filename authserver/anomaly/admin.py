"""Admin: open anomalies with the traffic around each, baselines and effective limits, policies.

Acknowledge, resolve and undo (resume a suspended key, lift a tightened or floored limit) are
POSTs with a CSRF token that need ``anomaly.change_anomaly``; pinning a limit needs
``anomaly.change_baseline``. Addresses (``Anomaly.personal``) are shown only to staff who may see
personal data in the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from authserver.adminkit import facts, when
from authserver.anomaly import services
from authserver.anomaly.charts import traffic_svg
from authserver.anomaly.models import Anomaly, AnomalyPolicy, AnomalyStatus, Baseline
from authserver.anomaly.selectors import traffic_around


def _chart(anomaly: Anomaly) -> Any:
    series = anomaly.series or anomaly.subject
    limit = Baseline.objects.filter(subject=series).values_list("effective_limit", flat=True).first()
    minute = anomaly.minute.astimezone(UTC).replace(second=0, microsecond=0)
    return traffic_svg(traffic_around(series, minute), marker=minute, limit=limit,
                       caption=f"{series}: requests per minute around {minute:%H:%M} UTC")


@admin.register(Anomaly)
class AnomalyAdmin(admin.ModelAdmin):
    list_display = ("detected", "signal", "subject", "status", "action", "action_taken", "occurrences")
    list_filter = ("status", "signal", "action")
    search_fields = ("subject",)
    date_hierarchy = "detected"
    actions = ("acknowledge", "resolve", "undo_action")
    change_form_template = "admin/anomaly/anomaly/change_form.html"
    readonly_fields = ("signal", "subject", "client", "key", "status", "minute", "detected", "last_seen",
                       "occurrences", "evidence_display", "action", "action_taken", "action_undone", "handled_by",
                       "traffic")
    exclude = ("personal", "series", "evidence")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="evidence")
    def evidence_display(self, obj: Anomaly) -> str:
        return facts(obj.evidence)

    @admin.display(description="Traffic around the anomaly")
    def traffic(self, obj: Anomaly) -> Any:
        return _chart(obj)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        anomaly = Anomaly.objects.filter(pk=unquote(object_id)).first() if object_id else None
        addresses = None
        if anomaly is not None and anomaly.personal:
            addresses = (sorted(anomaly.personal.items()) if request.user.has_perm("audit.view_personal_data")
                         else [("hidden", "needs the permission to see personal data")])
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "addresses": addresses})

    def get_urls(self) -> list[Any]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name=f"{prefix}_dashboard"),
            path("<path:object_id>/handle/<str:what>/", self.admin_site.admin_view(self.handle_view),
                 name=f"{prefix}_handle"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        open_anomalies = list(Anomaly.objects.exclude(status=AnomalyStatus.RESOLVED).order_by("-detected")[:50])
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Open anomalies",
                   "rows": [(a, _chart(a), facts(a.evidence)) for a in open_anomalies],
                   "can_change": self.has_change_permission(request)}
        return TemplateResponse(request, "admin/anomaly/anomaly/dashboard.html", context)

    def handle_view(self, request: HttpRequest, object_id: str, what: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        anomaly = get_object_or_404(Anomaly, pk=unquote(object_id))
        self._handle(request, anomaly, what)
        back = request.POST.get("next") or reverse("admin:anomaly_anomaly_change", args=[anomaly.pk])
        if not back.startswith("/"):
            back = reverse("admin:anomaly_anomaly_change", args=[anomaly.pk])
        return HttpResponseRedirect(back)

    def _handle(self, request: HttpRequest, anomaly: Anomaly, what: str) -> None:
        if what == "acknowledge":
            services.anomaly_set_status(anomaly=anomaly, status=AnomalyStatus.ACKNOWLEDGED, actor=request.user)
            self.message_user(request, "Anomaly acknowledged.")
        elif what == "resolve":
            services.anomaly_set_status(anomaly=anomaly, status=AnomalyStatus.RESOLVED, actor=request.user)
            self.message_user(request, "Anomaly resolved.")
        elif what == "undo":
            result = services.anomaly_undo(anomaly=anomaly, actor=request.user)
            self.message_user(request, f"Undo: {result}.")
        else:
            self.message_user(request, "Unknown action.", level=messages.ERROR)

    @admin.action(description="Acknowledge selected anomalies", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        for anomaly in queryset:
            services.anomaly_set_status(anomaly=anomaly, status=AnomalyStatus.ACKNOWLEDGED, actor=request.user)

    @admin.action(description="Resolve selected anomalies", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        for anomaly in queryset:
            services.anomaly_set_status(anomaly=anomaly, status=AnomalyStatus.RESOLVED, actor=request.user)

    @admin.action(description="Undo the action taken (resume key / lift limit)", permissions=["change"])
    def undo_action(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        for anomaly in queryset:
            self.message_user(request, f"{anomaly}: {services.anomaly_undo(anomaly=anomaly, actor=request.user)}")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "dashboard_url": reverse("admin:anomaly_anomaly_dashboard")}
        return super().changelist_view(request, extra)


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    list_display = ("subject", "effective_limit", "pinned_limit", "computed_limit", "high", "mean", "samples",
                    "tightened_until", "floored", "updated")
    list_editable = ("pinned_limit",)
    list_filter = ("floored",)
    search_fields = ("subject",)
    fields = ("subject", "client", "key", "pinned_limit", "effective_limit", "computed_limit", "tightened_limit",
              "tightened_until", "floored", "samples", "mean", "median", "high", "ewma", "ewm_std", "first_seen",
              "updated", "limit_history")
    readonly_fields = tuple(f for f in fields if f != "pinned_limit")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="History (newest first)")
    def limit_history(self, obj: Baseline) -> Any:
        rows = [(when(datetime.fromtimestamp(entry[0], UTC)), entry[1], entry[2],
                 entry[3] if len(entry) > 3 else "") for entry in reversed(obj.history or [])]
        if not rows:
            return "-"
        return format_html("<table><tr><th>when</th><th>effective/min</th><th>high quantile</th><th>note</th></tr>"
                           "{}</table>", format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                                          rows))

    def save_model(self, request: HttpRequest, obj: Baseline, form: Any, change: bool) -> None:
        if "pinned_limit" in form.changed_data:
            services.limit_pin(subject=obj.subject, limit=obj.pinned_limit, actor=request.user)
        else:
            super().save_model(request, obj, form, change)


@admin.register(AnomalyPolicy)
class AnomalyPolicyAdmin(admin.ModelAdmin):
    list_display = ("signal", "client", "action")
    list_filter = ("signal", "action")
    autocomplete_fields = ()
    raw_id_fields = ("client",)
