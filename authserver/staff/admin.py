"""Staff members' second factors in the admin: listed and removable, never added or read here.

django-otp's own device admins show a TOTP key and let one staff member type a device (or plaintext
recovery codes) for another: a way round enrolment. They are replaced by read-only lists whose delete
goes through :func:`authserver.staff.services.factor_remove` (audited) with a fresh second factor."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice

from authserver.staff import services
from authserver.staff.models import PasswordChangeRequired, TOTPDevice
from authserver.staff.stepup import fresh_factor_required


class FactorAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed")
    list_filter = ("confirmed",)
    search_fields = ("user__username", "name")
    fields = ("user", "name", "confirmed")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a factor is enrolled by its owner, on the staff pages

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @fresh_factor_required
    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.factor_remove(device=obj, actor=request.user)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> list[Any]:
        """Nothing more: each removal already is its own ``staff.factor.removed`` event."""
        return []

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for device in queryset:
            services.factor_remove(device=device, actor=request.user)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        found = actions.get("delete_selected")
        if found is not None:
            func, name, description = found
            actions["delete_selected"] = (fresh_factor_required(func), name, description)
        return actions


for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, FactorAdmin)


@admin.register(PasswordChangeRequired)
class PasswordChangeRequiredAdmin(admin.ModelAdmin):
    list_display = ("user", "since")
    readonly_fields = ("user", "since")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
