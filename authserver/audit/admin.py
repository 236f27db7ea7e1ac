"""Audit trail in the admin: searchable, read-only; personal data decrypted only with permission."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.html import format_html
from django_celery_beat.admin import PeriodicTaskAdmin  # type: ignore[import-untyped]
from django_celery_beat.models import PeriodicTask  # type: ignore[import-untyped]

from authserver.audit.context import actor_label
from authserver.audit.models import AuditEvent
from authserver.audit.selectors import audit_export
from authserver.audit.services import audit_record, personal_data


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("id", "seq", "at", "event", "outcome", "actor", "subject")
    list_filter = ("event", "outcome")
    search_fields = ("event", "actor", "subject")
    date_hierarchy = "at"
    readonly_fields = ("id", "at", "event", "outcome", "actor", "subject", "details_pretty", "personal_data",
                       "seq", "chain")
    fields = readonly_fields
    actions = ["export_jsonl"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="details")
    def details_pretty(self, obj: AuditEvent) -> str:
        return format_html(
            "<pre class='as-wrap'>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True)
        )

    @admin.display(description="personal data (decrypted)")
    def personal_data(self, obj: AuditEvent) -> str:
        if not obj.personal:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(personal_data(obj), indent=2, sort_keys=True))

    @admin.display(description="personal data")
    def personal_data_hidden(self, obj: AuditEvent) -> str:
        return "encrypted (needs the “view personal data” permission)" if obj.personal else "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Decided per request, never stored on the (shared, multi-threaded) admin instance.
        if request.user.has_perm("audit.view_personal_data"):
            return self.readonly_fields
        return tuple("personal_data_hidden" if f == "personal_data" else f for f in self.readonly_fields)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_readonly_fields(request, obj)

    @admin.action(description="Export the whole trail as JSON lines")
    def export_jsonl(self, request: HttpRequest, queryset: Any) -> StreamingHttpResponse:
        with_personal = request.user.has_perm("audit.view_personal_data")
        response = StreamingHttpResponse(
            (line + "\n" for line in audit_export(with_personal=with_personal)), content_type="application/x-ndjson"
        )
        response["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
        response["Cache-Control"] = "no-store"
        return response


def audited_action(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A third-party admin action that changes state without logging it: one ``admin.action``
    event naming the action and every selected object (ours call audited services instead)."""

    def action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        selected = [{"id": str(obj.pk), "repr": str(obj)[:200]} for obj in queryset]
        result = func(model_admin, request, queryset)
        label = model_admin.model._meta.label
        audit_record(event="admin.action", actor=actor_label(request.user), subject=label,
                     details={"action": name, "model": label, "objects": selected, "count": len(selected)},
                     personal={"username": request.user.get_username()})
        return result

    return action


class AuditedPeriodicTaskAdmin(PeriodicTaskAdmin):  # django-celery-beat is untyped
    """django-celery-beat's admin, with its enable/disable/toggle/run actions audited."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        return {name: (audited_action(name, func) if name != "delete_selected" else func, name, description)
                for name, (func, _, description) in actions.items()}


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, AuditedPeriodicTaskAdmin)
