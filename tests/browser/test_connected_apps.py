"""The connected-apps page in Chromium (issue 16): listed with the unverified mark, revoked after the
in-page confirmation (the token refused at introspection at once), and the page in German."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client as HttpClient

from clients.models import Client
from tests.browser.conftest import screenshot
from tests.browser.test_end_user_pages import _sign_in
from tests.factories import RS_AUDIENCE, UserFactory, make_client, make_resource_server
from tests.helpers import introspect, obtain_tokens

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _connect(user: Any) -> dict[str, Any]:
    """alice's tokens for a registered app and for a self-registered agent (through the real endpoints)."""
    rs, rs_secret = make_resource_server()
    http = HttpClient()
    http.force_login(user)
    notebook, notebook_secret = make_client(name="Notebook", grant_types=["authorization_code"],
                                            redirect_uris=["https://app.example.test/callback"], scopes=["ai.infer"])
    agent, agent_secret = make_client(name="Coding agent", grant_types=["authorization_code"],
                                      redirect_uris=["https://app.example.test/callback"], scopes=["ai.read"])
    Client.objects.filter(pk=agent.pk).update(registration_source="dcr")
    tokens = obtain_tokens(http, agent, agent_secret, scope="ai.read", resource=RS_AUDIENCE)
    obtain_tokens(http, notebook, notebook_secret, resource=RS_AUDIENCE)
    return {"http": http, "rs": rs, "rs_secret": rs_secret, "agent_token": tokens["access_token"]}


def test_list_confirm_and_revoke(page: Any, live_server: Any) -> None:
    alice = UserFactory(username="alice")
    held = _connect(alice)
    page.goto("/accounts/login/")
    _sign_in(page, "alice")
    page.click("#connected-apps")
    assert urlsplit(page.url).path == "/accounts/apps"
    apps = page.locator("section.app")
    assert apps.count() == 2
    agent = apps.filter(has_text="Coding agent")
    assert agent.locator(".badge").inner_text() == "unverified"
    assert apps.filter(has_text="Notebook").locator(".badge").count() == 0
    assert "ai.read" in agent.inner_text() and RS_AUDIENCE in agent.inner_text()
    screenshot(page, "apps_listed")

    # The confirmation is in the page: the button is hidden until "Revoke access…" is opened.
    button = agent.locator("button.danger")
    assert not button.is_visible()
    agent.locator("summary").click()
    assert button.is_visible() and "lose access" in agent.inner_text()
    screenshot(page, "apps_confirm_revoke")
    button.click()
    page.wait_for_selector(".notice")
    assert "Access revoked" in page.inner_text(".notice")
    assert page.locator("section.app").count() == 1 and "Coding agent" not in page.inner_text("main")
    screenshot(page, "apps_revoked")
    answer = introspect(held["http"], held["rs"], held["rs_secret"], held["agent_token"]).json()
    assert answer == {"active": False}


def test_the_page_in_german(browser: Any, live_server: Any) -> None:
    alice = UserFactory(username="alice")
    _connect(alice)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  locale="de-DE", ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        _sign_in(page, "alice")
        page.goto("/accounts/apps")
        assert page.inner_text("h1") == "Verbundene Apps"
        assert "nicht verifiziert" in page.inner_text("main") and "Zugriff entziehen" in page.inner_text("main")
        screenshot(page, "apps_german")
    finally:
        context.close()
