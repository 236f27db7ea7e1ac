"""Reads on clients and scopes (the command line's list and show). Never a secret or a digest."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from clients.models import Client, Scope


def client_get(*, client_id: str) -> Client | None:
    return Client.objects.filter(client_id=client_id).prefetch_related("allowed_scopes").first()


def clients_list() -> QuerySet[Client]:
    return Client.objects.prefetch_related("allowed_scopes").order_by("created", "pk")


def scope_get(*, name: str) -> Scope | None:
    return Scope.objects.filter(name=name).annotate(client_count=Count("clients")).first()


def scopes_list() -> QuerySet[Scope]:
    return Scope.objects.annotate(client_count=Count("clients")).order_by("name")
