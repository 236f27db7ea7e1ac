"""The landing page, signing out, and the consent page's API and "Not you?" (issue 14)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client as HttpClient

from authserver.accounts.views.pages import safe_local_path
from authserver.audit.models import AuditEvent
from clients.services import scope_create
from tests.conftest import pkce_pair
from tests.factories import RS_AUDIENCE, make_client, make_resource_server

pytestmark = pytest.mark.django_db


def test_landing_page_anonymous_and_signed_in(client, user):
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    body = anonymous.content.decode()
    assert 'href="/accounts/login/"' in body and "Django" not in body
    assert "no-cache" in anonymous["Cache-Control"] or "no-store" in anonymous["Cache-Control"]
    client.force_login(user)
    signed_in = client.get("/").content.decode()
    assert "alice" in signed_in and 'action="/accounts/logout/"' in signed_in and 'method="post"' in signed_in


def test_login_without_next_lands_on_the_landing_page(client, user):
    from tests.factories import PASSWORD

    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_logout_get_asks_and_post_signs_out_audited(client, user):
    client.force_login(user)
    asked = client.get("/accounts/logout/")
    assert asked.status_code == 200
    assert 'id="logout-form"' in asked.content.decode() and "csrfmiddlewaretoken" in asked.content.decode()
    assert "_auth_user_id" in client.session, "GET does not sign out"
    done = client.post("/accounts/logout/")
    assert done.status_code == 200 and "Signed out" in done.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(event="logout")
    assert event.subject == f"user:{user.pk}" and event.actor == f"user:{user.pk}"


def test_logout_post_needs_the_csrf_token(user):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(user)
    refused = http.post("/accounts/logout/", HTTP_ACCEPT="text/html")
    assert refused.status_code == 403
    assert "_auth_user_id" in http.session, "a forged sign-out signs nobody out"
    assert not AuditEvent.objects.filter(event="logout").exists()


@pytest.mark.parametrize(("value", "kept"), [
    ("/oauth/authorize?client_id=x&state=a%20b", True),
    ("/", True),
    ("https://evil.example/", False),
    ("//evil.example/", False),
    ("/\\evil.example/", False),
    ("/ok\r\nSet-Cookie: x=1", False),
    ("javascript:alert(1)", False),
    ("", False),
])
def test_logout_next_is_a_local_path_only(client, user, value, kept):
    assert (safe_local_path(value) == value != "") is kept
    client.force_login(user)
    response = client.post("/accounts/logout/", {"next": value})
    if kept:
        assert response.status_code == 302 and response["Location"] == value
    else:
        assert response.status_code == 200, "no redirect anywhere else: the signed-out page"


def _consent_query(app, **extra):
    _, challenge = pkce_pair()
    return urlencode({"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uris.split()[0],
                      "scope": "ai.infer", "state": "st", "code_challenge": challenge,
                      "code_challenge_method": "S256", **extra}, doseq=True)


def test_consent_names_the_api_and_the_scope_description(client, user):
    rs, _ = make_resource_server()
    type(rs).objects.filter(pk=rs.pk).update(name="Inference API")
    other = "https://unregistered.example.test"
    scope_create(name="ai.infer", description="Run inference on your behalf")
    app, _ = make_client(name="Notebook", grant_types=["authorization_code"],
                         redirect_uris=["https://app.example.test/cb"], scopes=["ai.infer"],
                         audiences=[RS_AUDIENCE, other])
    client.force_login(user)
    every = client.get(f"/oauth/authorize?{_consent_query(app)}").content.decode()
    assert "Inference API" in every and RS_AUDIENCE in every
    assert other in every and "Unregistered API" in every, "no resource parameter: every registered audience"
    assert "Run inference on your behalf" in every
    one = client.get(f"/oauth/authorize?{_consent_query(app, resource=RS_AUDIENCE)}").content.decode()
    assert "Inference API" in one and other not in one, "the resource requested (RFC 8707) narrows it"


def test_not_you_signs_out_and_returns_to_the_same_request(client, user):
    app, _ = make_client(name="Notebook", grant_types=["authorization_code"],
                         redirect_uris=["https://app.example.test/cb"], scopes=["ai.infer"])
    client.force_login(user)
    url = f"/oauth/authorize?{_consent_query(app)}"
    page = client.get(url)
    assert page.context["this_request"] == url
    assert 'id="not-you-form"' in page.content.decode()
    out = client.post("/accounts/logout/", {"next": page.context["this_request"]})
    assert out.status_code == 302 and out["Location"] == url
    assert "_auth_user_id" not in client.session
    back = client.get(out["Location"])
    assert back.status_code == 302
    login = urlsplit(back["Location"])
    assert login.path == "/accounts/login/"
    from urllib.parse import parse_qs

    assert parse_qs(login.query)["next"] == [url], "every parameter of the request survives the round trip"
