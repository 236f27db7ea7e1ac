"""Self-registered clients (RFC 7591 / CIMD) are marked in the client admin: column, filter, notice."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from clients.models import Client
from clients.services import client_register, scope_create
from tests.browser.conftest import admin_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_self_registered_client_is_marked_unverified(page: Any, live_server: Any, superuser: Any,
                                                       settings: Any) -> None:
    settings.DCR = "open"
    settings.REGISTRABLE_SCOPES = ["ai.infer"]
    scope_create(name="ai.infer", description="Run inference")
    client_register(name="Operator app", client_type="public", grant_types=["authorization_code"],
                    redirect_uris=["http://127.0.0.1/cb"])
    response = requests.post(f"{live_server.url}/oauth/register", timeout=10,
                             json={"client_name": "Helpful Agent", "redirect_uris": ["http://127.0.0.1:7777/callback"]})
    assert response.status_code == 201, response.text
    agent = Client.objects.get(client_id=response.json()["client_id"])
    admin_login(page, superuser)

    page.goto(f"/{settings.ADMIN_PATH}/clients/client/")
    rows = page.locator("#result_list tbody tr")
    agent_row = rows.filter(has_text="Helpful Agent")
    assert "self-registered (unverified)" in agent_row.inner_text()
    assert "operator" in rows.filter(has_text="Operator app").inner_text()
    screenshot(page, "admin_clients_self_registered")

    page.get_by_role("link", name="the client itself (unverified)").click()
    page.wait_for_url("**registered_by=self**")
    assert page.locator("#result_list tbody tr").count() == 1
    assert page.locator("#result_list").get_by_text("Helpful Agent").count() == 1

    page.goto(f"/{settings.ADMIN_PATH}/clients/client/{agent.pk}/change/")
    notice = page.locator("p.as-notice.as-unverified")
    assert notice.is_visible() and "dynamic registration (RFC 7591)" in notice.inner_text()
    screenshot(page, "admin_client_self_registered_change")
    page.goto(f"/{settings.ADMIN_PATH}/clients/client/{Client.objects.get(name='Operator app').pk}/change/")
    assert page.locator("p.as-notice.as-unverified").count() == 0
