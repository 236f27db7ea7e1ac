"""Which clients hold access to a user's account now (read only; docs/connected-apps.md).

A client holds access while the user has, for it, a live access token, a live refresh-token family
(an unrevoked refresh token whose family deadline has not passed), an unredeemed authorization
code or a device approval (RFC 8628) not collected yet. Expired and revoked rows are not access,
even while the cleanup job has not deleted them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Min, Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.oauth.device.models import AUTHORIZED, DeviceAuthorization
from authserver.oauth.usability import before_client_cutoff

MANUAL = "manual"


@dataclass
class ConnectedApp:
    client_id: str
    name: str
    self_registered: bool  # registration_source != "manual": dcr or cimd, shown as "unverified"
    scopes: set[str] = field(default_factory=set)
    audiences: set[str] = field(default_factory=set)
    first_authorized: datetime | None = None  # the earliest token or code still on record
    last_used: datetime | None = None  # the last token issued or refreshed (codes are not use)

    def sorted_scopes(self) -> list[str]:
        return sorted(self.scopes)

    def sorted_audiences(self) -> list[str]:
        return sorted(self.audiences)


def _app(apps: dict[int, ConnectedApp], client: Any) -> ConnectedApp:
    found = apps.get(client.pk)
    if found is None:
        found = apps[client.pk] = ConnectedApp(
            client_id=client.client_id, name=client.name or client.client_id,
            self_registered=(client.registration_source or MANUAL) != MANUAL)
    return found


def _seen(app: ConnectedApp, row: Any, *, use: bool) -> None:
    app.scopes.update(str(getattr(row, "scope", "") or "").split())
    app.audiences.update(row_audiences(row))
    if app.first_authorized is None or row.created < app.first_authorized:
        app.first_authorized = row.created
    if use and (app.last_used is None or row.created > app.last_used):
        app.last_used = row.created


def row_audiences(row: Any) -> list[str]:
    resource = getattr(row, "resource", None) or []
    return [resource] if isinstance(resource, str) else [str(r) for r in resource]


def _first_of_families(apps: dict[int, ConnectedApp], *, user: Any, families: set[Any]) -> None:
    """A live family began when its first refresh token was issued: rotation leaves revoked
    tombstones (kept until the family's deadline), so the authorization's start survives it."""
    if not families:
        return
    started = (get_refresh_token_model().objects.filter(user=user, token_family__in=families)
               .values("application_id").annotate(first=Min("created")))
    for row in started:
        app = apps.get(row["application_id"])
        if app is not None and (app.first_authorized is None or row["first"] < app.first_authorized):
            app.first_authorized = row["first"]


def connected_apps_for_user(*, user: Any, now: datetime | None = None) -> list[ConnectedApp]:
    """The clients holding access to ``user``'s account, by name. Only this user's rows are read."""
    now = now or timezone.now()
    apps: dict[int, ConnectedApp] = {}
    for token in get_access_token_model().objects.filter(user=user, expires__gt=now).select_related("application"):
        client = token.application
        if client is None or before_client_cutoff(created=token.created, client_cutoff=client.credentials_revoked_at):
            continue
        _seen(_app(apps, client), token, use=True)
    live_family = Q(family_expires__gt=now) | Q(family_expires__isnull=True)
    live_refresh = list(get_refresh_token_model().objects.filter(live_family, user=user, revoked__isnull=True)
                        .select_related("application", "access_token"))
    for refresh in live_refresh:
        client = refresh.application
        if before_client_cutoff(created=refresh.created, client_cutoff=client.credentials_revoked_at):
            continue
        app = _app(apps, client)
        _seen(app, refresh, use=True)
        if refresh.access_token is not None:  # a refresh token carries its access token's scope (RFC 6749 §6)
            app.scopes.update(str(refresh.access_token.scope or "").split())
    families = {refresh.token_family for refresh in live_refresh if refresh.token_family}
    _first_of_families(apps, user=user, families=families)
    for code in (get_grant_model().objects.filter(user=user, used__isnull=True, expires__gt=now)
                 .select_related("application")):
        _seen(_app(apps, code.application), code, use=False)
    for device in (DeviceAuthorization.objects.filter(user=user, status=AUTHORIZED, redeemed__isnull=True,
                                                      expires__gt=now).select_related("client")):
        _seen(_app(apps, device.client), device, use=False)
    return sorted(apps.values(), key=lambda app: (app.name.lower(), app.client_id))
