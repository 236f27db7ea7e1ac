"""Refresh tokens: rotation with reuse detection (RFC 9700 §4.14.2), client binding (RFC 6749 §6),
an absolute family lifetime, and format checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from authserver import credentials
from authserver.oauth.models import AccessToken, RefreshToken
from tests.helpers import TOKEN_URL, basic_auth, introspect, obtain_tokens, refresh

pytestmark = pytest.mark.django_db

INACTIVE = {"active": False}


@pytest.fixture
def session(client, web_client, user):
    """A logged-in browser and a fresh token set from the authorization-code flow."""
    app, secret = web_client
    client.force_login(user)
    return app, secret, obtain_tokens(client, app, secret)


def test_replayed_rotated_refresh_token_revokes_the_whole_family(client, session, resource_server):
    app, secret, first = session
    rs, rs_secret = resource_server
    second = refresh(client, app, secret, first["refresh_token"]).json()
    third = refresh(client, app, secret, second["refresh_token"]).json()
    assert introspect(client, rs, rs_secret, third["access_token"]).json()["active"] is True

    replay = refresh(client, app, secret, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    # The newest access and refresh tokens die with it.
    assert introspect(client, rs, rs_secret, third["access_token"]).json() == INACTIVE
    newest = refresh(client, app, secret, third["refresh_token"])
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(application=app).exists()
    assert not RefreshToken.objects.filter(application=app, revoked__isnull=True).exists()


def test_replay_of_the_immediately_preceding_token_is_also_reuse(client, session, resource_server):
    """No grace period (REFRESH_TOKEN_GRACE_PERIOD_SECONDS = 0)."""
    app, secret, first = session
    rs, rs_secret = resource_server
    second = refresh(client, app, secret, first["refresh_token"]).json()
    assert refresh(client, app, secret, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(client, rs, rs_secret, second["access_token"]).json() == INACTIVE
    assert refresh(client, app, secret, second["refresh_token"]).json()["error"] == "invalid_grant"


def test_replay_does_not_touch_other_families(client, web_client, user, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    client.force_login(user)
    family_a = obtain_tokens(client, app, secret)
    family_b = obtain_tokens(client, app, secret)
    refresh(client, app, secret, family_a["refresh_token"])
    refresh(client, app, secret, family_a["refresh_token"])  # replay in family A
    assert introspect(client, rs, rs_secret, family_b["access_token"]).json()["active"] is True
    assert refresh(client, app, secret, family_b["refresh_token"]).status_code == 200


def test_refresh_token_of_client_a_used_by_client_b(client, session, other_web_client, resource_server):
    app_a, secret_a, tokens = session
    app_b, secret_b = other_web_client
    rs, rs_secret = resource_server
    stolen = refresh(client, app_b, secret_b, tokens["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(application=app_b).exists()
    assert not RefreshToken.objects.filter(application=app_b).exists()
    # A's refresh token was not consumed by B's attempt.
    assert refresh(client, app_a, secret_a, tokens["refresh_token"]).status_code == 200


def test_refresh_token_needs_client_authentication(client, session):
    app, secret, tokens = session
    anonymous = refresh(client, app, None, tokens["refresh_token"])  # client_id only
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    wrong = client.post(
        TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, credentials.mint("cs")),
    )
    assert wrong.status_code == 401
    assert refresh(client, app, secret, tokens["refresh_token"]).status_code == 200


def test_refresh_after_family_absolute_lifetime(client, session):
    app, secret, first = session
    second = refresh(client, app, secret, first["refresh_token"]).json()
    RefreshToken.objects.filter(application=app).update(family_expires=timezone.now() - timedelta(seconds=1))
    response = refresh(client, app, secret, second["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert AccessToken.objects.filter(application=app).count() == 1  # nothing new issued


def test_rotation_keeps_the_family_deadline(client, session):
    app, secret, first = session
    deadline = RefreshToken.objects.get(application=app).family_expires
    assert deadline is not None
    second = refresh(client, app, secret, first["refresh_token"]).json()
    newest = RefreshToken.objects.get(application=app, revoked__isnull=True)
    assert newest.family_expires == deadline
    assert credentials.is_well_formed(second["refresh_token"], "rt")


def test_refresh_cannot_widen_scope(client, session):
    from tests.factories import ScopeFactory

    app, secret, tokens = session
    ScopeFactory(name="ai.admin")
    response = client.post(
        TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "ai.infer ai.admin"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_revoked_refresh_token_is_dead(client, session, resource_server):
    app, secret, tokens = session
    rs, rs_secret = resource_server
    assert client.post(
        "/oauth/revoke", {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    ).status_code == 200
    assert refresh(client, app, secret, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(client, rs, rs_secret, tokens["access_token"]).json() == INACTIVE


MALFORMED = [
    pytest.param(lambda t: "at_" + t[3:], id="wrong-prefix"),
    pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="bad-checksum"),
    pytest.param(lambda t: t[:-1], id="truncated"),
    pytest.param(lambda t: t + "A", id="extended"),
    pytest.param(lambda t: credentials.digest(t), id="stored-digest"),
    pytest.param(lambda t: t.upper(), id="uppercased"),
    pytest.param(lambda t: credentials.mint("rt"), id="well-formed-unknown"),
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: "rt_" + "-" * 49, id="bad-alphabet"),
    pytest.param(lambda t: "rt_" + "A" * 60000, id="huge"),
]


@pytest.mark.parametrize("make_bad", MALFORMED)
def test_malformed_refresh_token(client, session, make_bad):
    app, secret, tokens = session
    response = refresh(client, app, secret, make_bad(tokens["refresh_token"]))
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    assert AccessToken.objects.filter(application=app).count() == 1
    # The family was not harmed by the garbage: the real token still rotates.
    assert refresh(client, app, secret, tokens["refresh_token"]).status_code == 200


def test_access_token_is_not_a_refresh_token(client, session):
    app, secret, tokens = session
    response = refresh(client, app, secret, tokens["access_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
