"""A client_id that is an https URL is resolved through its metadata document (CIMD on)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from authserver.audit.models import AuditEvent
from clients.models import Client
from tests.factories import REDIRECT_URI, RS_AUDIENCE
from tests.helpers import AUTHORIZE_URL, authorize, code_from, exchange_code, pkce_pair, refresh
from tests.oauth.cimd.conftest import serve
from tests.oauth.cimd.docserver import json_answer

pytestmark = pytest.mark.django_db


def _authorize_get(client, client_id, challenge, **extra):
    return client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "ai.infer",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", **extra})


class _Ref:
    def __init__(self, client_id):
        self.client_id = client_id


def test_first_sight_creates_a_public_cimd_client_and_the_code_flow_completes(client, user, cimd_on, docs):
    url = serve(docs, scope="ai.infer ai.admin mcp.tools")
    client.force_login(user)
    verifier, challenge = pkce_pair()
    response = authorize(client, _Ref(url), challenge=challenge)
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT_URI)
    app = Client.objects.get(client_id=url)
    assert app.registration_source == "cimd" and app.client_type == "public" and app.name == "Agent Smith"
    assert app.grant_types == ["authorization_code"] and app.redirect_uris == REDIRECT_URI
    # Scopes: what it asked for, within the registrable set (ai.admin is not registrable).
    assert sorted(app.allowed_scopes.values_list("name", flat=True)) == ["ai.infer", "mcp.tools"]
    assert app.allowed_audiences == [RS_AUDIENCE]
    assert 590 <= (app.cimd_expires_at - timezone.now()).total_seconds() <= 600
    event = AuditEvent.objects.get(event="client.cimd_resolved")
    assert event.subject == f"client:{url}" and event.details["created"] is True
    assert event.details["host"] == f"127.0.0.1:{docs.port}" and event.details["max_age"] == 600
    tokens = exchange_code(client, app, None, code_from(response), verifier)
    assert tokens.status_code == 200, tokens.content
    assert refresh(client, app, None, tokens.json()["refresh_token"]).status_code == 200
    assert docs.hits["/agent.json"] == 1  # the consent POST, the exchange and the refresh used the row


def test_a_document_asking_no_scope_gets_every_registrable_one(client, user, cimd_on, docs):
    url = serve(docs)
    client.force_login(user)
    _, challenge = pkce_pair()
    assert _authorize_get(client, url, challenge).status_code == 200
    assert sorted(Client.objects.get(client_id=url).allowed_scopes.values_list("name", flat=True)) == [
        "ai.infer", "mcp.tools"]


def test_past_its_max_age_the_document_is_fetched_again_and_a_failure_refuses(client, user, cimd_on, docs):
    url = serve(docs)
    client.force_login(user)
    _, challenge = pkce_pair()
    assert _authorize_get(client, url, challenge).status_code == 200
    Client.objects.filter(client_id=url).update(cimd_expires_at=timezone.now() - timedelta(seconds=1))
    docs.routes["/agent.json"] = json_answer({"gone": True}, status=404)
    response = _authorize_get(client, url, challenge)
    assert response.status_code == 400 and "Location" not in response  # no stale answer, no redirect
    assert docs.hits["/agent.json"] == 2
    assert AuditEvent.objects.filter(event="client.cimd_refused", details__reason="http_status").count() == 1


def test_a_fresh_document_is_not_fetched_again(client, user, cimd_on, docs):
    url = serve(docs)
    client.force_login(user)
    for _ in range(3):
        _, challenge = pkce_pair()
        assert _authorize_get(client, url, challenge).status_code == 200
    assert docs.hits["/agent.json"] == 1


def test_with_cimd_off_a_url_client_id_is_unknown_and_nothing_is_fetched(client, user, cimd_on, docs, settings):
    url = serve(docs)
    settings.CIMD = "off"
    client.force_login(user)
    _, challenge = pkce_pair()
    response = _authorize_get(client, url, challenge)
    assert response.status_code == 400 and not Client.objects.exists() and docs.hits == {}
