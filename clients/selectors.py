"""Reads on clients. Selectors only read."""

from __future__ import annotations

from collections.abc import Iterable

from clients.models import Client


def resource_server_audiences() -> list[tuple[str, str]]:
    """``(audience URI, resource server name)`` of every registered resource server, by name."""
    rows = Client.objects.filter(is_resource_server=True, audience__isnull=False).order_by("name", "audience")
    return [(audience, name) for audience, name in rows.values_list("audience", "name")]


def audiences_unregistered(*, audiences: Iterable[str]) -> list[str]:
    """The audiences, in order, that name no registered resource server."""
    wanted = list(dict.fromkeys(audiences))
    if not wanted:
        return []
    known = set(Client.objects.filter(is_resource_server=True, audience__in=wanted).values_list("audience", flat=True))
    return [audience for audience in wanted if audience not in known]
