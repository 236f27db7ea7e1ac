"""List filters of the key and compromise-response admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from clients.models import Client
from keys.models import ApiKey


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

