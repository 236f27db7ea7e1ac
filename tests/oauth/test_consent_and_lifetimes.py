"""Consent is remembered only for clients registered for it; lifetimes follow the client, capped."""

from __future__ import annotations

import pytest
from django.utils import timezone

from authserver.oauth.models import AccessToken, RefreshToken
from tests.factories import REDIRECT_URI, make_client
from tests.helpers import AUTHORIZE_URL, authorize, client_credentials, code_from, exchange_code, pkce_pair

pytestmark = pytest.mark.django_db


def _authorize_get(client, app, challenge, **extra):
    return client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI, "scope": "ai.infer",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", **extra})


@pytest.mark.parametrize(("remember", "skips_consent"), [(True, True), (False, False)])
def test_consent_is_remembered_only_when_the_client_allows_it(client, user, remember, skips_consent):
    app, secret = make_client(name="app", grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI],
                              scopes=["ai.infer"], remember_consent=remember)
    client.force_login(user)
    verifier, challenge = pkce_pair()
    exchange_code(client, app, secret, code_from(authorize(client, app, challenge=challenge)), verifier)
    # Second visit: a client may not ask to skip consent itself (approval_prompt is ours to decide).
    _, challenge2 = pkce_pair()
    second = _authorize_get(client, app, challenge2, approval_prompt="auto")
    if skips_consent:
        assert second.status_code == 302 and "code=" in second["Location"]
    else:
        assert second.status_code == 200 and "authorizationForm" in second.content.decode()


def test_deny_redirects_with_access_denied_and_issues_nothing(client, user, web_client):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    response = authorize(client, app, challenge=challenge, allow=False)
    assert response.status_code == 302
    assert "error=access_denied" in response["Location"] and response["Location"].startswith(REDIRECT_URI)
    assert not AccessToken.objects.exists()


def test_access_token_lifetime_follows_client_within_server_maximum(client, settings):
    app, secret = make_client(name="short", access_token_lifetime=120)
    assert client_credentials(client, app, secret).json()["expires_in"] == 120
    app.access_token_lifetime = settings.ACCESS_TOKEN_MAX_SECONDS * 10  # bypassing clean(): still capped
    app.save(update_fields=["access_token_lifetime"])
    assert client_credentials(client, app, secret).json()["expires_in"] == settings.ACCESS_TOKEN_MAX_SECONDS


def test_refresh_family_has_absolute_deadline_inherited_by_rotation(client, user, web_client, settings):
    app, secret = web_client
    client.force_login(user)
    verifier, challenge = pkce_pair()
    tokens = exchange_code(client, app, secret, code_from(authorize(client, app, challenge=challenge)), verifier)
    first = RefreshToken.objects.get()
    expected = timezone.now().timestamp() + settings.REFRESH_TOKEN_DEFAULT_SECONDS
    assert abs(first.family_expires.timestamp() - expected) < 10
    from tests.helpers import refresh

    refresh(client, app, secret, tokens.json()["refresh_token"])
    successor = RefreshToken.objects.get(revoked__isnull=True)
    assert successor.pk != first.pk and successor.family_expires == first.family_expires
