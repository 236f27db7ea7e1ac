"""authserver.oauth.connected_apps: what counts as access, and consent_revoke's one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.audit.models import AuditEvent
from authserver.oauth.connected_apps.selectors import connected_apps_for_user
from authserver.oauth.connected_apps.services import NotConnected, consent_revoke
from authserver.revocation.models import RevocationEvent
from clients.models import Client
from tests.conftest import pkce_pair
from tests.factories import UserFactory
from tests.helpers import authorize, obtain_tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(user: Any, web_client: Any) -> dict[str, Any]:
    http = HttpClient()
    http.force_login(user)
    app, secret = web_client
    return {"app": app, "tokens": obtain_tokens(http, app, secret), "http": http}


def test_expired_and_revoked_rows_are_not_access(user, held):
    assert [a.client_id for a in connected_apps_for_user(user=user)] == [held["app"].client_id]
    later = timezone.now() + timedelta(days=400)  # past every token's expiry and the family's deadline
    assert connected_apps_for_user(user=user, now=later) == []


def test_a_compromise_cut_off_ends_access_at_once(user, held):
    Client.objects.filter(pk=held["app"].pk).update(credentials_revoked_at=timezone.now())
    assert connected_apps_for_user(user=user) == []


def test_an_unredeemed_code_alone_is_access_but_not_use(user, web_client):
    http = HttpClient()
    http.force_login(user)
    authorize(http, web_client[0], challenge=pkce_pair()[1])
    [app] = connected_apps_for_user(user=user)
    assert app.last_used is None and app.first_authorized is not None and app.scopes == {"ai.infer"}


@pytest.mark.parametrize("client_id", ["", "no-such-client", "x" * 300])
def test_nothing_to_revoke_raises_and_writes_nothing(user, held, client_id):
    events = RevocationEvent.objects.count()
    with pytest.raises(NotConnected):
        consent_revoke(user=user, client_id=client_id, actor=user)
    assert RevocationEvent.objects.count() == events
    assert not AuditEvent.objects.filter(event="consent.revoked").exists()
    assert get_access_token_model().objects.count() == 1


def test_another_users_grant_is_not_revocable(held):
    with pytest.raises(NotConnected):
        consent_revoke(user=UserFactory(username="eve"), client_id=held["app"].client_id, actor="test")
    assert get_refresh_token_model().objects.filter(revoked__isnull=True).count() == 1


def test_revoking_tells_resource_servers_every_digest(user, held):
    access = get_access_token_model().objects.get()
    refresh = get_refresh_token_model().objects.get()
    before = RevocationEvent.objects.count()
    counts = consent_revoke(user=user, client_id=held["app"].client_id, actor=user)
    assert counts == {"access_tokens": 1, "refresh_tokens": 1, "authorization_codes": 0,
                      "device_authorizations": 0}
    events = set(RevocationEvent.objects.order_by("id")[before:].values_list("kind", "digest"))
    assert {("access_token", access.token_checksum), ("refresh_token", refresh.token_checksum)} <= events
    assert get_grant_model().objects.filter(used__isnull=True).count() == 0


@pytest.fixture
def device_client(db: Any) -> Any:
    from tests.factories import make_client

    return make_client(name="Terminal agent", client_type="public", grant_types=["device_code"],
                       scopes=["ai.infer"])[0]


def test_a_device_approval_not_yet_collected_is_access_and_revoking_ends_it(user, client, device_client):
    """RFC 8628: the user approved on the page; revoking the app before the device polls means the
    device never gets a token."""
    from authserver.oauth.device.models import DeviceAuthorization
    from tests.oauth.device.flow import approve, poll, start

    started = start(client, device_client, scope="ai.infer").json()
    browser = HttpClient()
    browser.force_login(user)
    assert approve(browser, started["user_code"]).status_code == 200
    [app] = connected_apps_for_user(user=user)
    assert app.client_id == device_client.client_id and app.scopes == {"ai.infer"} and app.last_used is None
    counts = consent_revoke(user=user, client_id=device_client.client_id, actor=user)
    assert counts["device_authorizations"] == 1
    assert connected_apps_for_user(user=user) == []
    DeviceAuthorization.objects.update(last_polled=None)  # the device waited its interval
    answer = poll(client, device_client, started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] in {"access_denied", "expired_token"}
