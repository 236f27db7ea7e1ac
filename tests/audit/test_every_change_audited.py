"""Issue 13, item 3: every admin action writes exactly one audit event with actor, subject and details.

The table (tests/audit/admin_table.py plus the rows below) must cover every action each admin
offers (read from the changelist page itself, so an action added tomorrow without a row fails
here) and every custom admin view. A bulk delete writes one ``admin.deleted`` naming every object.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from authserver.anomaly.models import Anomaly, AnomalyPolicy, Signal
from authserver.anomaly.services import anomaly_record
from authserver.audit.services import personal_data
from clients.models import Scope
from tests.audit.admin_table import PAIRS, ROWS, Ctx, Expect, bulk_delete, row
from tests.factories import REDIRECT_URI, make_client
from tests.helpers import authorize, client_credentials, code_from, exchange_code, pkce_pair, staff_login

pytestmark = pytest.mark.django_db

_STANDARD = ("changelist", "add", "history", "delete", "change")


# -- rows that need the OAuth token models or the anomaly app -----------------------------------------
def _tokens(ctx: Ctx, *, codes: int = 2) -> None:
    service, secret = make_client(name="svc", scopes=["ai.infer"])
    client_credentials(HttpClient(), service, secret)
    web, web_secret = make_client(name="web", grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI],
                                  scopes=["ai.infer"])
    http = HttpClient()
    staff_login(http, ctx.admin)
    verifier, challenge = pkce_pair()
    exchange_code(http, web, web_secret, code_from(authorize(http, web, challenge=challenge)), verifier)
    for _ in range(codes):
        authorize(http, web, challenge=pkce_pair()[1])


def _revoke_row(model: Any, event: str) -> Any:
    def run(ctx: Ctx) -> Expect:
        _tokens(ctx)
        objects = list(model().objects.all())
        assert objects
        ctx.mark()
        ctx.action(model(), "revoke_selected", objects)
        ids = {str(o.pk) for o in objects}
        # Every live one revoked (a used code is already spent), named in the one event.
        return Expect(event, details=lambda d: 0 < d["count"] == len(d["ids"]) and set(d["ids"]) <= ids)

    return run


ROWS[("oauth.AccessToken", "revoke_selected")] = _revoke_row(get_access_token_model, "access_tokens.revoked")
ROWS[("oauth.RefreshToken", "revoke_selected")] = _revoke_row(get_refresh_token_model, "refresh_tokens.revoked")
ROWS[("oauth.Grant", "revoke_selected")] = _revoke_row(get_grant_model, "authorization_codes.revoked")


def _id_tokens(ctx: Ctx) -> list[Any]:
    app, _ = make_client(name="oidc")
    expires = timezone.now()
    return [get_id_token_model().objects.create(user=ctx.admin, application=app, expires=expires) for _ in range(2)]


PAIRS["oauth.IDToken"] = _id_tokens


def _anomaly(*, action: str = "alert") -> Anomaly:
    client, _ = make_client(name="noisy")
    AnomalyPolicy.objects.update_or_create(signal=Signal.VOLUME, client=None, defaults={"action": action})
    anomaly, _ = anomaly_record(signal=Signal.VOLUME, subject=f"client:{client.client_id}", minute=timezone.now(),
                                evidence={"count": 420}, series=f"client:{client.client_id}")
    return anomaly


def _anomaly_row(name: str, event: str, *, action: str = "alert", view: str | None = None) -> Any:
    def run(ctx: Ctx) -> Expect:
        anomaly = _anomaly(action=action)
        ctx.mark()
        if view is None:
            ctx.action(Anomaly, name, [anomaly])
        else:
            ctx.http.post(ctx.url(Anomaly, "handle", anomaly.pk, view))
        return Expect(event, subject=anomaly.subject)

    return run


ROWS[("anomaly.Anomaly", "acknowledge")] = _anomaly_row("acknowledge", "anomaly.acknowledged")
ROWS[("anomaly.Anomaly", "resolve")] = _anomaly_row("resolve", "anomaly.resolved")
ROWS[("anomaly.Anomaly", "undo_action")] = _anomaly_row("undo_action", "anomaly.action_undone", action="tighten")
ROWS[("anomaly.Anomaly", "handle")] = _anomaly_row("", "anomaly.acknowledged", view="acknowledge")


@row("anomaly.Anomaly", "dashboard")
def _(ctx: Ctx) -> Expect:
    _anomaly()
    ctx.mark()
    assert ctx.http.get(ctx.url(Anomaly, "dashboard")).status_code == 200
    return Expect(None)


# -- Django's own add / change / delete pages (the hook covers every admin alike) ---------------------
EXTRA: dict[str, Any] = {}


def _scope_page(kind: str) -> Any:
    def run(ctx: Ctx) -> Expect:
        scope = Scope.objects.create(name="edited.scope", description="before")
        ctx.mark()
        if kind == "add":
            ctx.http.post(ctx.url(Scope, "add"), {"name": "added.scope", "description": "new"})
            added = Scope.objects.get(name="added.scope")
            return Expect("admin.added", subject=f"clients.Scope:{added.pk}")
        if kind == "change":
            ctx.http.post(ctx.url(Scope, "change", scope.pk), {"description": "after"})
            return Expect("admin.changed", subject=f"clients.Scope:{scope.pk}",
                          details=lambda d: d["change"] == [{"changed": {"fields": ["Description"]}}])
        ctx.http.post(ctx.url(Scope, "delete", scope.pk), {"post": "yes"})
        return Expect("admin.deleted", subject=f"clients.Scope:{scope.pk}",
                      details=lambda d: d["objects"] == [{"id": str(scope.pk), "repr": str(scope)}])

    return run


for _kind in ("add", "change", "delete"):
    EXTRA[f"scope-{_kind}"] = _scope_page(_kind)


def _user_add(ctx: Ctx) -> Expect:
    ctx.mark()
    secret = "first passphrase for the new user 7"
    ctx.http.post(ctx.url(get_user_model(), "add"),
                  {"username": "newstaff", "password1": secret, "password2": secret, "usable_password": "true"})
    user = get_user_model().objects.get(username="newstaff")
    # One action, one event: the password's (it says the user is new), no second admin.added.
    return Expect("user.password_changed", subject=f"user:{user.pk}", details=lambda d: d["new_user"] is True)


EXTRA["user-add"] = _user_add


# -- the tests --------------------------------------------------------------------------------------
@pytest.fixture
def ctx(db: Any) -> Ctx:
    root = get_user_model().objects.create_superuser("root", "root@example.test", None)
    http = HttpClient()
    staff_login(http, root)
    return Ctx(http=http, admin=root)


def _offered(ctx: Ctx) -> set[tuple[str, str]]:
    """Every (model, action or custom view) the admin offers a superuser, read from the admin itself."""
    offered = set()
    for model, model_admin in admin.site._registry.items():
        label, opts = model._meta.label, model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None) or ""
            if name.startswith(prefix) and name[len(prefix):] not in _STANDARD:
                offered.add((label, name[len(prefix):]))
        page = ctx.http.get(reverse(f"admin:{prefix}changelist"))
        form = page.context["action_form"] if page.status_code == 200 and page.context else None
        if form is not None:
            offered |= {(label, value) for value, _ in form.fields["action"].choices if value}
    return offered


def _table() -> dict[tuple[str, str], Any]:
    return {**ROWS, **{(label, "delete_selected"): bulk_delete(label) for label in PAIRS}}


def test_the_table_covers_every_admin_action_and_custom_view(ctx: Ctx) -> None:
    offered = _offered(ctx)
    assert ("clients.Scope", "delete_selected") in offered and ("keys.ApiKey", "rotate") in offered
    missing = sorted(offered - set(_table()))
    assert not missing, f"admin actions or views without an audit-table row: {missing}"


def _check(ctx: Ctx, expect: Expect) -> None:
    events = ctx.since()
    if expect.event is None:
        assert events == [], [(e.event, e.subject) for e in events]
        return
    assert [e.event for e in events] == [expect.event] * expect.count, [(e.event, e.subject) for e in events]
    for event in events:
        assert event.actor == f"user:{ctx.admin.pk}"
        if event.event.startswith("admin."):  # the staff member's name, encrypted like every username
            assert personal_data(event)["username"] == "root"
        if expect.subject:
            assert event.subject == expect.subject
        assert expect.details(event.details), event.details


@pytest.mark.parametrize("key", sorted(_table()), ids=lambda k: f"{k[0]}:{k[1]}")
def test_each_admin_action_writes_exactly_one_event(ctx: Ctx, key: tuple[str, str]) -> None:
    _check(ctx, _table()[key](ctx))


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_the_admins_own_pages_write_exactly_one_event(ctx: Ctx, name: str) -> None:
    _check(ctx, EXTRA[name](ctx))
