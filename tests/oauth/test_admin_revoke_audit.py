"""The admin's "revoke selected" actions go through audited services: one event per action."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.audit.models import AuditEvent
from tests.helpers import authorize, client_credentials, code_from, exchange_code, pkce_pair, staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_http(db: Any) -> tuple[HttpClient, Any]:
    admin_user = get_user_model().objects.create_superuser("root", "root@example.test", None)
    http = HttpClient()
    staff_login(http, admin_user)
    return http, admin_user


def _issue(service_client: Any, web_client: Any, user: Any, *, codes: int = 0) -> None:
    """Two access tokens (one with a refresh token), and ``codes`` codes left unused."""
    http = HttpClient()
    app, secret = service_client
    client_credentials(http, app, secret)
    web, web_secret = web_client
    staff_login(http, user)
    verifier, challenge = pkce_pair()
    exchange_code(http, web, web_secret, code_from(authorize(http, web, challenge=challenge)), verifier)
    for _ in range(codes):
        authorize(http, web, challenge=pkce_pair()[1])


def _revoke(http: HttpClient, changelist: str, model: Any) -> str:
    ids = [str(pk) for pk in model.objects.values_list("pk", flat=True)]
    response = http.post(reverse(f"admin:{changelist}"), {"action": "revoke_selected", "_selected_action": ids},
                         follow=True)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("changelist", "model", "event", "message", "count"),
    [
        ("oauth_accesstoken_changelist", get_access_token_model, "access_tokens.revoked", "Revoked 2 access tokens.", 2),
        ("oauth_refreshtoken_changelist", get_refresh_token_model, "refresh_tokens.revoked", "Revoked 1 refresh token.", 1),
        ("oauth_grant_changelist", get_grant_model, "authorization_codes.revoked", "Revoked 2 authorization codes.", 2),
    ],
    ids=["access-tokens", "refresh-tokens", "codes"],
)
def test_bulk_revoke_writes_one_audit_event(admin_http, service_client, web_client, user, changelist, model, event,
                                            message, count):
    http, admin_user = admin_http
    _issue(service_client, web_client, user, codes=2)
    selected = {str(pk): hint for pk, hint in model().objects.values_list("pk", "hint")}
    assert message in _revoke(http, changelist, model())
    [record] = AuditEvent.objects.filter(event=event)
    assert record.actor == f"user:{admin_user.pk}" and record.details["count"] == count
    assert set(record.details["ids"]) <= set(selected) and len(record.details["ids"]) == count
    assert set(record.details["hints"]) <= set(selected.values())
    # Nothing left to revoke: no change, no event.
    _revoke(http, changelist, model())
    assert AuditEvent.objects.filter(event=event).count() == 1


def test_revoked_access_tokens_are_gone_and_their_refresh_tokens_revoked(admin_http, service_client, web_client, user):
    http, _ = admin_http
    _issue(service_client, web_client, user)
    _revoke(http, "oauth_accesstoken_changelist", get_access_token_model())
    assert not get_access_token_model().objects.exists()
    assert not get_refresh_token_model().objects.filter(revoked__isnull=True).exists()
