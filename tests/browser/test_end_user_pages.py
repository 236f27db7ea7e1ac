"""The end-user pages in Chromium (issue 14): landing page, consent naming the API, "Not you?",
sign-out, the HTML error pages (404, the login limit's 429), and the pages in German."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from authserver import notfound
from clients.models import Client
from clients.services import client_register, scope_create
from tests.browser.conftest import screenshot
from tests.browser.test_consent import CALLBACK, submit_login
from tests.conftest import pkce_pair
from tests.factories import PASSWORD, RS_AUDIENCE, UserFactory, make_resource_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _notebook() -> str:
    """A client for the inference API (a registered resource server); the query of its request."""
    rs, _ = make_resource_server()
    Client.objects.filter(pk=rs.pk).update(name="Inference API")
    scope_create(name="ai.infer", description="Run inference on your behalf")
    app, _ = client_register(name="Notebook", client_type="confidential", grant_types=["authorization_code"],
                             redirect_uris=[CALLBACK], scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    _, challenge = pkce_pair()
    return urlencode({"response_type": "code", "client_id": app.client_id, "redirect_uri": CALLBACK,
                      "scope": "ai.infer", "state": "st-9", "code_challenge": challenge,
                      "code_challenge_method": "S256", "resource": RS_AUDIENCE})


def _sign_in(page: Any, username: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    submit_login(page)
    page.wait_for_load_state()


def test_landing_consent_not_you_and_sign_out(page: Any, live_server: Any) -> None:
    UserFactory(username="alice")
    UserFactory(username="bob")
    query = _notebook()

    # Anonymous landing page -> sign in -> back on the landing page (it was a 404).
    page.goto("/")
    assert page.locator("h1").inner_text() == "Welcome"
    screenshot(page, "pages_landing_anonymous")
    page.click("#sign-in")
    _sign_in(page, "alice")
    assert urlsplit(page.url).path == "/"
    assert "alice" in page.inner_text("main") and page.locator("#sign-out").count() == 1
    screenshot(page, "pages_landing_signed_in")

    # Consent names the API (registered resource server: name and URI) and the scope's description.
    page.goto(f"/oauth/authorize?{query}")
    page.wait_for_selector("#authorizationForm")
    apis = page.inner_text("#apis")
    assert "Inference API" in apis and RS_AUDIENCE in apis
    assert "Run inference on your behalf" in page.inner_text("ul.scopes")
    assert "alice" in page.inner_text("p.lead")
    screenshot(page, "pages_consent_api_named")

    # "Not you?": signed out, then the login page continuing the very same request.
    page.click("#not-you")
    page.wait_for_selector("#id_username")
    login = urlsplit(page.url)
    assert login.path == "/accounts/login/"
    assert parse_qs(parse_qs(login.query)["next"][0].split("?", 1)[1]) == parse_qs(query)
    screenshot(page, "pages_not_you_login")
    _sign_in(page, "bob")
    page.wait_for_selector("#authorizationForm")
    assert "bob" in page.inner_text("p.lead") and "Inference API" in page.inner_text("#apis")

    # Sign out: GET asks, the button POSTs, the signed-out page says so; / then offers sign-in.
    response = page.goto("/accounts/logout/")
    assert response is not None and response.status == 200
    assert page.locator("#logout-form").count() == 1
    screenshot(page, "pages_logout_confirm")
    page.click("#logout-form button[type=submit]")
    page.wait_for_load_state()
    assert "Signed out" in page.inner_text("h1")
    screenshot(page, "pages_signed_out")
    page.goto("/")
    assert page.locator("#sign-in").count() == 1

    # An unknown page: the uniform 404 (authserver.notfound), the same bytes a scanner gets; no framework named.
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    assert response.body() == notfound.BODY and "Django" not in page.content()
    screenshot(page, "pages_404")


def test_german_login_consent_and_rate_limit_page(browser: Any, live_server: Any, settings: Any) -> None:
    UserFactory(username="alice")
    query = _notebook()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  locale="de-DE", ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"/oauth/authorize?{query}")
        assert page.inner_text("h1") == "Anmelden" and page.locator("html").get_attribute("lang") == "de"
        assert "Benutzername" in page.inner_text("main")
        screenshot(page, "pages_login_de")
        _sign_in(page, "alice")
        page.wait_for_selector("#authorizationForm")
        assert page.inner_text("h1") == "Notebook autorisieren"
        assert "wird diese API für Sie nutzen können" in page.inner_text("main")
        assert page.inner_text("button[name=allow]") == "Erlauben"
        screenshot(page, "pages_consent_de")

        # The login limit answers the browser with a page (German here), Retry-After kept.
        page.click("#not-you")
        page.wait_for_selector("#id_username")
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login.account": ("1/300", "closed")}
        page.fill("#id_username", "mallory")  # a fresh account key: one attempt admitted, the next refused
        page.fill("#id_password", "wrong")
        submit_login(page)
        assert "Benutzername und Passwort passen nicht zusammen" in page.inner_text("[role=alert]")
        page.fill("#id_password", "wrong again")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("button[type=submit]")
        assert posted.value.status == 429 and int(posted.value.headers["retry-after"]) >= 1
        assert page.inner_text("h1") == "Zu viele Versuche"
        assert "rate_limited" not in page.content()
        screenshot(page, "pages_429_de")
    finally:
        context.close()
