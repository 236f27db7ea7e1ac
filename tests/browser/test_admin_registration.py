"""Registering clients in Chromium: a resource server without a grant (it can never get a token),
audiences chosen from the registered resource servers (a typo refused unless overridden), every
error in one round, and Back-then-Save creating nothing twice (client, key, secret rotation)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.conf import settings

from clients.models import Client
from clients.services import scope_create
from keys.models import ApiKey
from tests.browser.conftest import admin_login, screenshot
from tests.factories import RS_AUDIENCE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TYPO = "https://api.exmaple.test"


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def save(page: Any, button: str = "input[name=_save]") -> None:
    with page.expect_navigation():
        page.click(button)


def test_resource_server_audiences_and_one_round_of_errors(page: Any, live_server: Any, superuser: Any) -> None:
    scope_create(name="ai.infer", description="Run inference")
    admin_login(page, superuser)

    # A resource server: no grant ticked, its own audience. Created; it can never get a token.
    page.goto(admin_url("clients/client/add/"))
    page.fill("#id_name", "Inference API")
    page.fill("#id_resource_server_audience", RS_AUDIENCE)
    save(page)
    secret = page.input_value("#client-secret")
    rs = Client.objects.get(name="Inference API")
    assert rs.grant_types == [] and rs.is_resource_server and rs.audience == RS_AUDIENCE
    for data in ({"grant_type": "client_credentials"}, {"grant_type": "client_credentials", "scope": "ai.infer"}):
        refused = requests.post(f"{live_server.url}/oauth/token", data=data, auth=(rs.client_id, secret), timeout=10)
        assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client", refused.text
    screenshot(page, "admin_rs_without_grant_created")

    # A client: the registered resource server is offered by name; a typo, a missing redirect URI
    # (a cross-field rule) and a bad lifetime (a field rule) are all reported in the same round.
    page.goto(admin_url("clients/client/add/"))
    choice = page.get_by_label(f"Inference API — {RS_AUDIENCE}")
    assert choice.count() == 1
    page.fill("#id_name", "Batch")
    page.check("input[name=grant_types][value=authorization_code]")
    page.check("input[name=grant_types][value=client_credentials]")
    page.get_by_label("ai.infer").check()
    page.fill("#id_other_audiences", TYPO)
    page.fill("#id_access_token_lifetime", "5")
    save(page)
    assert "names no registered resource server" in page.inner_text(".field-other_audiences .errorlist")
    assert TYPO in page.inner_text(".field-other_audiences .errorlist")
    assert "at least one redirect URI" in page.inner_text(".field-redirect_uris .errorlist")
    assert page.locator(".field-access_token_lifetime .errorlist").count() == 1
    assert not Client.objects.filter(name="Batch").exists()
    screenshot(page, "admin_add_client_errors_one_round")

    # Fixed, from a fresh form (so that Back below lands on a form, not on a POST's result).
    page.goto(admin_url("clients/client/add/"))
    page.fill("#id_name", "Batch")
    page.check("input[name=grant_types][value=client_credentials]")
    page.get_by_label("ai.infer").check()
    page.fill("#id_other_audiences", TYPO)
    page.get_by_label(f"Inference API — {RS_AUDIENCE}").check()
    page.check("#id_allow_unregistered_audience")
    save(page)
    assert page.locator("#client-secret").count() == 1
    batch = Client.objects.get(name="Batch")
    assert batch.allowed_audiences == [RS_AUDIENCE, TYPO]

    # Back, then Save again: no second client; the error links to the one created.
    page.go_back()
    page.wait_for_selector("#id_name")
    assert page.input_value("#id_name") == "Batch"  # Chromium restores what was typed
    save(page)
    assert Client.objects.filter(name="Batch").count() == 1
    existing = page.locator(".field-name .errorlist a.as-existing")
    assert "already exists" in page.inner_text(".field-name .errorlist")
    screenshot(page, "admin_back_then_save_client")
    with page.expect_navigation():
        existing.click()
    assert page.url.endswith(f"/clients/client/{batch.pk}/change/")

    # The list names the audiences (the Audience column showed "-" before).
    page.goto(admin_url("clients/client/"))
    assert RS_AUDIENCE in page.locator("#result_list tr", has_text="Batch").inner_text()


def test_back_then_submit_on_key_issue_and_secret_rotation(page: Any, live_server: Any, superuser: Any) -> None:
    scope_create(name="ai.infer", description="Run inference")
    admin_login(page, superuser)
    page.goto(admin_url("clients/client/add/"))
    page.fill("#id_name", "Batch")
    page.check("input[name=grant_types][value=client_credentials]")
    save(page)
    batch = Client.objects.get(name="Batch")

    # Key issue: Back, then Issue again -> refused, with a link to the key issued the first time.
    page.goto(admin_url("keys/apikey/add/"))
    page.select_option("#id_client", str(batch.pk))
    page.fill("#id_name", "billing-service production")
    save(page)
    assert page.locator("#api-key").count() == 1
    page.go_back()
    page.wait_for_selector("#id_name")
    save(page)
    assert ApiKey.objects.filter(client=batch).count() == 1
    assert "already has a key named" in page.inner_text(".field-name .errorlist")
    assert page.locator(".field-name .errorlist a.as-existing").count() == 1
    screenshot(page, "admin_back_then_issue_key")

    # Secret rotation: Back, then Rotate again -> nothing rotated until "Yes, rotate again" is ticked.
    page.goto(admin_url(f"clients/client/{batch.pk}/rotate-secret/"))
    save(page, "#rotate-submit")
    assert page.locator("#client-secret").count() == 1
    hint = Client.objects.get(pk=batch.pk).client_secret_hint
    page.go_back()
    page.wait_for_selector("#rotate-submit")
    save(page, "#rotate-submit")
    assert Client.objects.get(pk=batch.pk).client_secret_hint == hint
    assert "The secret was rotated less than a minute ago" in page.inner_text(".errornote")
    screenshot(page, "admin_back_then_rotate_secret")
    page.check("#rotate-again")
    save(page, "#rotate-submit")
    assert page.locator("#client-secret").count() == 1
    assert Client.objects.get(pk=batch.pk).client_secret_hint != hint
