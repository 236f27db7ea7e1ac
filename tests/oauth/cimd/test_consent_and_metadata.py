"""The consent page marks self-registered clients and names a document's host; RFC 8414 says
whether client_id URLs are accepted; a client whose document is gone is refused at the token endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client
from tests.factories import REDIRECT_URI
from tests.helpers import AUTHORIZE_URL, TOKEN_URL, authorize, code_from, exchange_code, pkce_pair, refresh
from tests.oauth.cimd.conftest import serve
from tests.oauth.cimd.docserver import json_answer

pytestmark = pytest.mark.django_db


def _consent_page(client, client_id):
    _, challenge = pkce_pair()
    return client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "ai.infer",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})


def test_a_document_client_is_unverified_and_shown_by_its_host(client, user, cimd_on, docs):
    url = serve(docs)
    client.force_login(user)
    page = _consent_page(client, url)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="unverified-app"' in html
    assert f'<span class="host" id="document-host">127.0.0.1:{docs.port}</span>' in html
    assert page.context["self_registered"] is True


def test_german_consent_page_says_unverified(client, user, cimd_on, docs):
    url = serve(docs)
    client.force_login(user)
    _, challenge = pkce_pair()
    page = client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": url, "redirect_uri": REDIRECT_URI, "scope": "ai.infer",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}, HTTP_ACCEPT_LANGUAGE="de")
    assert "Nicht geprüfte App" in page.content.decode()


@pytest.mark.parametrize(("source", "notice", "host"), [("manual", False, False), ("dcr", True, False)])
def test_registered_and_dcr_clients(client, user, web_client, source, notice, host):
    app, _ = web_client
    Client.objects.filter(pk=app.pk).update(registration_source=source)
    client.force_login(user)
    html = _consent_page(client, app.client_id).content.decode()
    assert ('id="unverified-app"' in html) is notice
    assert ('id="document-host"' in html) is host


@pytest.mark.parametrize("mode", ["on", "off"])
def test_metadata_names_cimd_support_only_when_on(client, settings, mode):
    settings.CIMD = mode
    data = client.get("/.well-known/oauth-authorization-server").json()
    if mode == "on":
        assert data["client_id_metadata_document_supported"] is True
        assert "none" in data["token_endpoint_auth_methods_supported"]
    else:
        assert "client_id_metadata_document_supported" not in data


def _signed_in_tokens(client, user, docs):
    """A document client's tokens for ``user``: ``(url, the client reference, the token response)``."""
    url = serve(docs)
    client.force_login(user)
    verifier, challenge = pkce_pair()
    app = type("Ref", (), {"client_id": url})()
    return url, app, exchange_code(client, app, None, code_from(authorize(client, app, challenge=challenge)),
                                   verifier).json()


def test_refresh_is_refused_once_the_expired_document_is_gone(client, user, cimd_on, docs):
    url, app, tokens = _signed_in_tokens(client, user, docs)
    row = Client.objects.get(client_id=url)
    row.cimd_expires_at = timezone.now() - timedelta(seconds=1)
    row.save(update_fields=["cimd_expires_at"])
    docs.routes["/agent.json"] = json_answer({"error": "gone"}, status=404)
    response = refresh(client, app, None, tokens["refresh_token"])
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert docs.hits["/agent.json"] == 2


def test_cimd_off_refuses_clients_resolved_while_it_was_on(client, user, cimd_on, docs):
    _, app, tokens = _signed_in_tokens(client, user, docs)
    cimd_on.CIMD = "off"
    assert refresh(client, app, None, tokens["refresh_token"]).status_code == 401


@pytest.mark.parametrize("client_id", ["x" * 101, "https://a.example.test/" + "a" * 240, "https://a.test/\x00"])
def test_over_long_and_nul_client_ids_answer_like_unknown_ones(client, cimd_on, client_id):
    response = client.post(TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": "rt_x", "client_id": client_id})
    assert response.status_code == 401 and not Client.objects.exists()
