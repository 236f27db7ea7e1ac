"""Login and consent pages in a real browser, through to the redirect with code, state and iss."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.conf import settings

from authserver import credentials
from clients.services import client_register, scope_create
from tests.browser.conftest import screenshot
from tests.conftest import pkce_pair
from tests.factories import PASSWORD, RS_AUDIENCE, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CALLBACK = "https://app.example.test/cb"


def submit_login(page: Any) -> None:
    """Submit the login form; a CSRF refusal fails with its cause rather than a timeout later."""
    with page.expect_response(lambda r: r.request.method == "POST" and "/accounts/login/" in r.url) as posted:
        page.click("button[type=submit]")
    response = posted.value
    assert response.status != 403, (
        f"login POST refused ({response.status}) with Origin: {response.request.headers.get('origin')!r}. "
        "Under Referrer-Policy: no-referrer Chromium sends 'Origin: null' with form POSTs and Django's CSRF "
        "check rejects it: use 'same-origin' (SECURE_REFERRER_POLICY and the meta tag in templates/base.html)."
    )


def test_login_consent_and_redirect(page: Any, live_server: Any, fake_app: Any) -> None:
    UserFactory(username="alice")
    scope_create(name="ai.infer", description="Run inference on your behalf")
    app, secret = client_register(
        name="Notebook",
        client_type="confidential",
        grant_types=["authorization_code"],
        redirect_uris=[CALLBACK],
        scopes=["ai.infer"],
        audiences=[RS_AUDIENCE],
        allow_unregistered_audience=True,  # no resource server registered in this test
    )
    fake_app.hits.clear()
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": CALLBACK,
            "scope": "ai.infer",
            "state": "st-123",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"/oauth/authorize?{query}")

    assert urlsplit(page.url).path == "/accounts/login/"
    assert page.locator("h1").inner_text() == "Sign in"
    screenshot(page, "login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong password")
    submit_login(page)
    assert "didn't match" in page.inner_text("[role=alert]")
    page.fill("#id_password", PASSWORD)
    submit_login(page)

    page.wait_for_selector("#authorizationForm")
    assert urlsplit(page.url).path == "/oauth/authorize"
    assert "Authorize Notebook" in page.inner_text("h1")
    scopes = page.inner_text("ul.scopes")
    assert "ai.infer" in scopes and "Run inference on your behalf" in scopes
    screenshot(page, "consent")

    # The authorization response is a real 302 that the browser follows to the client app
    # (served by the fake_app fixture: page.route cannot intercept a redirect's target).
    with page.expect_response(lambda r: r.request.method == "POST" and "/oauth/authorize" in r.url) as posted:
        with page.expect_navigation(url="https://app.example.test/**"):
            page.click("button[name=allow]")
    assert posted.value.status == 302
    assert posted.value.headers["location"] == page.url
    assert fake_app.hits == [page.url]
    assert "received the callback" in page.inner_text("h1")
    params = parse_qs(urlsplit(page.url).query)
    assert page.url.startswith(CALLBACK + "?")
    assert params["state"] == ["st-123"]
    assert params["iss"] == [settings.ISSUER]
    code = params["code"][0]
    assert credentials.is_well_formed(code, "ac")

    # The code really works (and only with the PKCE verifier).
    token = requests.post(
        f"{live_server.url}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier},
        auth=(app.client_id, secret),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    assert credentials.is_well_formed(token.json()["access_token"], "at")


def test_invalid_redirect_uri_shows_error_and_stays(page: Any, live_server: Any, fake_app: Any) -> None:
    user = UserFactory(username="bob")
    scope_create(name="ai.infer", description="Run inference")
    app, _ = client_register(
        name="Notebook",
        client_type="confidential",
        grant_types=["authorization_code"],
        redirect_uris=[CALLBACK],
        scopes=["ai.infer"],
    )
    fake_app.hits.clear()
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else elsewhere.append(r.url))

    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    submit_login(page)
    page.wait_for_load_state()

    _, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": "https://evil.example/cb",
            "scope": "ai.infer",
            "state": "st",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response = page.goto(f"/oauth/authorize?{query}")
    assert response is not None and response.url.startswith(live_server.url)
    assert urlsplit(page.url).path == "/oauth/authorize"
    assert "This request can't be completed" in page.inner_text("h1")
    assert "redirect" in page.inner_text("[role=alert]").lower()
    assert page.locator("#authorizationForm").count() == 0
    assert elsewhere == []
    assert fake_app.hits == []
    screenshot(page, "authorize_error")
