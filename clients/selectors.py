"""Reads on clients. Selectors only read."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from clients.models import Client

#: How the choice lists name this server's own management API (``<issuer>/api``), an audience
#: that is registered without being a client.
MANAGEMENT_API_NAME = "authserver management API"


def resource_server_audiences() -> list[tuple[str, str]]:
    """``(audience URI, resource server name)`` of every registered resource server, by name, then
    this server's own management API (AUTHSERVER_ISSUER + ``/api``)."""
    rows = Client.objects.filter(is_resource_server=True, audience__isnull=False).order_by("name", "audience")
    registered = [(audience, name) for audience, name in rows.values_list("audience", "name")]
    return [*registered, (settings.MANAGEMENT_API_AUDIENCE, MANAGEMENT_API_NAME)]


def audiences_unregistered(*, audiences: Iterable[str]) -> list[str]:
    """The audiences, in order, that name no registered resource server."""
    wanted = list(dict.fromkeys(audiences))
    if not wanted:
        return []
    known = set(Client.objects.filter(is_resource_server=True, audience__in=wanted).values_list("audience", flat=True))
    known.add(settings.MANAGEMENT_API_AUDIENCE)
    return [audience for audience in wanted if audience not in known]
