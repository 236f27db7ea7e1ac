"""Reads on clients and scopes (the command line's list and show, the admin's audience choices).
Selectors only read; never a secret or a digest."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, QuerySet

from clients.models import Client, Scope
from clients.resource_paths.models import ResourceServerPaths

#: How the choice lists name this server's own management API (``<issuer>/api``), an audience
#: that is registered without being a client.
MANAGEMENT_API_NAME = "authserver management API"


def client_get(*, client_id: str) -> Client | None:
    return Client.objects.filter(client_id=client_id).prefetch_related("allowed_scopes").first()


def clients_list() -> QuerySet[Client]:
    return Client.objects.prefetch_related("allowed_scopes").order_by("created", "pk")


def scope_get(*, name: str) -> Scope | None:
    return Scope.objects.filter(name=name).annotate(client_count=Count("clients")).first()


def scopes_list() -> QuerySet[Scope]:
    return Scope.objects.annotate(client_count=Count("clients")).order_by("name")


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


def resource_paths_get(*, client: Client) -> ResourceServerPaths | None:
    """A resource server's rotating-path settings, or None if they were never set (rotating off)."""
    return ResourceServerPaths.objects.filter(client=client).first()


def resource_paths_for_audience(*, audience: str) -> tuple[Client, ResourceServerPaths | None] | None:
    """The resource server registered for ``audience`` and its rotating-path settings."""
    client = Client.objects.filter(is_resource_server=True, audience=audience).select_related("resource_paths").first()
    if client is None:
        return None
    return client, getattr(client, "resource_paths", None)


def resource_metadata_document(*, client_pk: int) -> dict[str, object] | None:
    """RFC 9728 §2: the protected-resource metadata of the resource server ``client_pk``.

    ``resource`` is its audience (RFC 8707), the one authorization server is this issuer, bearer
    tokens travel in the header only (RFC 6750 §2.1: never the query or the body), and
    ``scopes_supported`` names its own allowed scopes (omitted when it has none, §2: OPTIONAL).
    """
    client = Client.objects.filter(pk=client_pk, is_resource_server=True).first()
    if client is None or not client.audience:
        return None
    document: dict[str, object] = {
        "resource": client.audience,
        "authorization_servers": [settings.ISSUER],
        "bearer_methods_supported": ["header"],
    }
    scopes = sorted(client.allowed_scopes.values_list("name", flat=True))
    if scopes:
        document["scopes_supported"] = scopes
    if client.name:
        document["resource_name"] = client.name
    return document
