"""``accounts/apps``: the connected-apps page and revoking an app (issue 16; docs/connected-apps.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.test import override_settings
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.audit.models import AuditEvent
from authserver.revocation.models import RevocationEvent
from clients.models import Client
from tests.conftest import pkce_pair
from tests.factories import RS_AUDIENCE, UserFactory
from tests.helpers import authorize, introspect, obtain_tokens, refresh

pytestmark = pytest.mark.django_db

APPS_URL = "/accounts/apps"


def _signed_in(user: Any) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def _counts() -> tuple[int, int, int, int]:
    return (get_access_token_model().objects.count(),
            get_refresh_token_model().objects.filter(revoked__isnull=True).count(),
            get_grant_model().objects.filter(used__isnull=True).count(),
            AuditEvent.objects.filter(event="consent.revoked").count())


@pytest.fixture
def connected(user: Any, web_client: Any) -> dict[str, Any]:
    """alice's tokens for the web app: one refreshed family, and one code she never redeemed."""
    http = _signed_in(user)
    app, secret = web_client
    tokens = obtain_tokens(http, app, secret, resource=RS_AUDIENCE)
    refreshed = refresh(http, app, secret, tokens["refresh_token"]).json()
    authorize(http, app, challenge=pkce_pair()[1])  # an unredeemed code
    return {"http": http, "app": app, "secret": secret, "tokens": refreshed, "first": tokens}


def test_the_page_lists_the_app_with_its_scopes_audiences_and_dates(connected):
    response = connected["http"].get(APPS_URL)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    [app] = response.context["apps"]
    assert (app.client_id, app.name, app.self_registered) == (connected["app"].client_id, "web app", False)
    assert app.scopes == {"ai.infer"} and app.audiences == {RS_AUDIENCE}
    assert app.first_authorized is not None and app.last_used is not None
    assert app.first_authorized <= app.last_used
    page = response.content.decode()
    assert "web app" in page and "ai.infer" in page and RS_AUDIENCE in page and "unverified" not in page
    assert f'name="client" value="{connected["app"].client_id}"' in page and "csrfmiddlewaretoken" in page


def test_last_use_is_the_last_token_issued_or_refreshed(connected):
    [app] = connected["http"].get(APPS_URL).context["apps"]
    refreshed = get_refresh_token_model().objects.get(revoked__isnull=True)
    assert app.last_used == max(refreshed.created, refreshed.access_token.created)
    assert app.last_used > get_refresh_token_model().objects.exclude(pk=refreshed.pk).get().created


def test_first_authorized_survives_rotation(connected):
    [app] = connected["http"].get(APPS_URL).context["apps"]
    assert app.first_authorized == get_refresh_token_model().objects.earliest("created").created
    assert app.first_authorized < app.last_used


@pytest.mark.parametrize("source", ["dcr", "cimd"])
def test_a_self_registered_app_is_marked_unverified(connected, source):
    Client.objects.filter(pk=connected["app"].pk).update(registration_source=source)
    response = connected["http"].get(APPS_URL)
    assert response.context["apps"][0].self_registered is True
    assert 'class="badge"' in response.content.decode()


def test_the_home_page_links_the_page(connected):
    assert f'href="{APPS_URL}"' in connected["http"].get("/").content.decode()


def test_signed_out_visitors_go_to_the_login_page(db):
    response = HttpClient().get(APPS_URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert HttpClient().post(APPS_URL, {"client": "x"}).status_code == 302


def test_revoking_ends_every_token_family_and_code_and_introspection_refuses_at_once(connected, resource_server):
    rs, rs_secret = resource_server
    http, tokens = connected["http"], connected["tokens"]
    assert introspect(http, rs, rs_secret, tokens["access_token"]).json()["active"] is True
    before = RevocationEvent.objects.count()
    response = http.post(APPS_URL, {"client": connected["app"].client_id})
    assert response.status_code == 302 and response["Location"] == APPS_URL
    # Right after the POST returns: refused, everywhere (the cache was warmed above).
    assert introspect(http, rs, rs_secret, tokens["access_token"]).json() == {"active": False}
    assert refresh(http, connected["app"], connected["secret"], tokens["refresh_token"]).status_code == 400
    assert _counts()[:3] == (0, 0, 0)
    kinds = set(RevocationEvent.objects.order_by("id")[before:].values_list("kind", flat=True))
    assert {"access_token", "refresh_token"} <= kinds  # the stream tells resource servers
    event = AuditEvent.objects.get(event="consent.revoked")
    assert event.actor == f"user:{connected['http'].session['_auth_user_id']}"
    assert event.subject == f"client:{connected['app'].client_id}"
    assert event.details == {"access_tokens": 1, "refresh_tokens": 1, "authorization_codes": 1, "device_authorizations": 0}
    page = http.get(APPS_URL)
    assert list(page.context["apps"]) == [] and "Access revoked" in page.content.decode()


def test_other_users_and_other_apps_keep_their_tokens(connected, other_web_client, resource_server):
    rs, rs_secret = resource_server
    bob = UserFactory(username="bob")
    bob_http = _signed_in(bob)
    bobs = obtain_tokens(bob_http, connected["app"], connected["secret"])
    other, other_secret = other_web_client
    alices_other = obtain_tokens(connected["http"], other, other_secret)
    connected["http"].post(APPS_URL, {"client": connected["app"].client_id})
    assert introspect(bob_http, rs, rs_secret, bobs["access_token"]).json()["active"] is True
    assert introspect(bob_http, rs, rs_secret, alices_other["access_token"]).json()["active"] is True
    assert [a.client_id for a in bob_http.get(APPS_URL).context["apps"]] == [connected["app"].client_id]
    assert [a.client_id for a in connected["http"].get(APPS_URL).context["apps"]] == [other.client_id]


def test_a_user_neither_sees_nor_revokes_another_users_grants(connected):
    mallory = _signed_in(UserFactory(username="mallory"))
    assert list(mallory.get(APPS_URL).context["apps"]) == []
    before = _counts()
    response = mallory.post(APPS_URL, {"client": connected["app"].client_id})
    assert response.status_code == 404 and "no access to your account" in response.content.decode()
    assert _counts() == before


@pytest.mark.parametrize("value", [
    None,                                  # no field
    "",                                    # empty
    "no-such-client",                      # unknown
    "https://evil.example/client.json",    # an unknown CIMD-shaped id
    "x" * 3000,                            # oversized
    "a\x00b",                              # NUL
])
def test_bad_client_fields_change_nothing(connected, value):
    before = _counts()
    response = connected["http"].post(APPS_URL, {} if value is None else {"client": value})
    assert response.status_code == 404
    assert _counts() == before  # no row changed, no consent.revoked event


def test_the_post_needs_the_csrf_token(connected):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(UserFactory(username="carol"))
    before = _counts()
    assert http.post(APPS_URL, {"client": connected["app"].client_id}).status_code == 403
    assert _counts() == before


@override_settings(RATE_LIMITS={"apps.user": ("2/300", "closed")})
def test_revocations_are_limited_per_user(connected):
    http = connected["http"]
    for _ in range(2):
        http.post(APPS_URL, {"client": "no-such-client"})
    response = http.post(APPS_URL, {"client": connected["app"].client_id})
    assert response.status_code == 429 and "Retry-After" in response
    assert _counts()[3] == 0
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:apps.user").count() == 1


def test_the_page_is_translated(connected):
    page = connected["http"].get(APPS_URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Verbundene Apps" in page and "Zugriff entziehen" in page
