"""The compromise response from the admin: from the key list filtered by client and as an action on
selected keys; it also needs ``clients.change_client``, since it revokes the client's tokens too.
"""

from __future__ import annotations

from typing import Any

import pytest

from keys.models import CompromiseResponse
from keys.services import api_key_create, api_key_suspend
from tests.browser.conftest import (
    admin_login,
    admin_url,
    apikey_url,
    key_active,
    screenshot,
    staff_with,
)
from tests.factories import RS_AUDIENCE, make_client

browser = pytest.mark.browser
live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)
pytestmark = pytest.mark.usefixtures("fresh_key_counters")


@browser
@live_db
def test_compromise_response_from_the_client_filter(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    keys = [api_key_create(client=customer, name=f"service {n}", audiences=[RS_AUDIENCE]) for n in range(3)]
    api_key_suspend(key=keys[2][0])
    bystander, bystander_plaintext = api_key_create(
        client=make_client(name="Unrelated", audiences=[RS_AUDIENCE])[0], name="keep me", audiences=[RS_AUDIENCE]
    )
    assert all(key_active(p) for _, p in keys[:2]) and key_active(bystander_plaintext)

    admin_login(page, superuser)
    page.goto(admin_url(f"keys/apikey/?client__id__exact={customer.pk}"))
    assert page.locator("#result_list tbody tr").count() == 3
    page.click("#client-compromise")
    page.wait_for_selector("#compromise-form")
    assert page.inner_text(f"#compromise-client-{customer.pk} .count-api-keys") == "3"
    assert not CompromiseResponse.objects.exists()  # the GET changed nothing
    screenshot(page, "admin_key_compromise")
    page.click("#compromise-submit")
    page.wait_for_selector(".messagelist .success")
    assert "Compromise response started for Acme inference" in page.inner_text(".messagelist")

    assert not any(key_active(p) for _, p in keys)
    assert key_active(bystander_plaintext)
    response = CompromiseResponse.objects.get()
    assert response.client == customer and response.requested_by == superuser.get_username()
    statuses = page.locator("#result_list td.field-status_list_display").all_inner_texts()
    assert len(statuses) == 3 and all(s.startswith("Revoked") for s in statuses), statuses
    screenshot(page, "admin_keys_after_compromise")

    # A key issued afterwards works: the response revoked what existed when it was decided.
    _, later = api_key_create(client=customer, name="after the incident", audiences=[RS_AUDIENCE])
    assert key_active(later)

    page.goto(admin_url("keys/compromiseresponse/"))
    listing = page.inner_text("#result_list")
    assert "Acme inference" in listing and superuser.get_username() in listing
    assert page.locator(".object-tools a.addlink").count() == 0
    screenshot(page, "admin_compromise_responses")


@browser
@live_db
def test_compromise_response_as_an_action(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    key, plaintext = api_key_create(client=customer, name="worker", audiences=[RS_AUDIENCE])
    admin_login(page, superuser)
    page.goto(admin_url(f"keys/apikey/?client__id__exact={customer.pk}"))
    page.check("#action-toggle")
    page.select_option("select[name=action]", "compromise_response")
    page.click("button[name=index]")
    page.wait_for_selector("#compromise-form")
    assert key_active(plaintext)  # the confirmation page changed nothing
    page.click("#compromise-submit")
    page.wait_for_selector(".messagelist .success")
    assert page.url.endswith(f"?client__id__exact={customer.pk}")  # back to the filtered list
    assert not key_active(plaintext)
    assert CompromiseResponse.objects.filter(client=customer).count() == 1


@pytest.mark.django_db
def test_http_compromise_also_needs_client_change_permission(owner: Any) -> None:
    api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    keys_only = staff_with("view_apikey", "change_apikey")
    assert keys_only.get(apikey_url("compromise", owner.pk)).status_code == 403
    assert keys_only.post(apikey_url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    assert not CompromiseResponse.objects.exists()
