"""Self-registered clients (RFC 7591 dynamic registration, or a Client ID Metadata Document) marked
in the client admin: a column, a filter and a notice on the change page. Nobody vouched for such a
client: its name and redirect URIs are whatever it sent (docs/dynamic-registration.md)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from clients.models import Client

SOURCES = {"dcr": "dynamic registration (RFC 7591)", "cimd": "client metadata document"}


class SelfRegisteredFilter(admin.SimpleListFilter):
    title = "registered by"
    parameter_name = "registered_by"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("self", "the client itself (unverified)"), ("operator", "an operator"), *SOURCES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> QuerySet[Client]:
        value = self.value()
        if value == "self":
            return queryset.exclude(registration_source="manual")
        if value == "operator":
            return queryset.filter(registration_source="manual")
        return queryset.filter(registration_source=value) if value in SOURCES else queryset


class SelfRegisteredAdmin(admin.ModelAdmin):
    """Mixed into ``clients.admin.ClientAdmin``."""

    @admin.display(description="registered by", ordering="registration_source")
    def registration_display(self, obj: Client) -> str:
        if obj.registration_source == "manual":
            return "operator"
        return format_html('<span class="as-unverified" title="{}">self-registered (unverified)</span>',
                           SOURCES.get(obj.registration_source, obj.registration_source))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and obj.registration_source != "manual":
            extra_context = {**(extra_context or {}),
                             "self_registered": SOURCES.get(obj.registration_source, obj.registration_source)}
        return super().change_view(request, object_id, form_url, extra_context)
