"""The API-key admin's issuing form: the key is shown once, in a no-store page, never logged, and a
resubmitted form issues nothing. The browser test drives headless Chromium; the ``http_*`` tests
use Django's test client and are not marked ``browser``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client as HttpClient

from authserver import credentials
from keys.models import ApiKey
from keys.services import api_key_create, api_key_suspend
from tests.browser.conftest import (
    OTHER_AUDIENCE,
    add_form,
    admin_login,
    admin_url,
    apikey_url,
    assert_nowhere,
    key_active,
    key_url,
    screenshot,
    seed_usage,
)
from tests.factories import RS_AUDIENCE, make_client

browser = pytest.mark.browser
live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)
pytestmark = pytest.mark.usefixtures("fresh_key_counters")


@browser
@live_db
def test_issue_key_shows_it_once(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    # Other keys, so the list has something to compare with.
    older, _ = api_key_create(
        client=customer,
        name="batch jobs",
        scopes=["ai.embed"],
        audiences=[OTHER_AUDIENCE],
        expires_in=timedelta(days=5),
    )
    seed_usage(older)
    paused, _ = api_key_create(client=customer, name="staging", rate_limit=(10, 1), quota=50_000)
    api_key_suspend(key=paused)
    other, _ = make_client(name="Beta analytics", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    api_key_create(client=other, name="dashboards", expires_in=timedelta(days=200))

    admin_login(page, superuser)
    page.goto(admin_url("keys/apikey/"))
    page.click(".object-tools a.addlink")
    page.wait_for_selector("#apikey_form")
    page.select_option("#id_client", label=f"Acme inference ({customer.client_id})")
    page.fill("#id_name", "billing-service production")
    page.get_by_label("ai.infer").check()
    page.fill("#id_audiences", RS_AUDIENCE)
    page.fill("#id_allowed_ips", "203.0.113.0/24\n10.0.0.1/8")  # the second has host bits set: a typo
    page.fill("#id_expires_in", "30d")
    page.fill("#id_rate_limit", "100/m")
    page.fill("#id_quota", "1000000")
    screenshot(page, "admin_key_add")
    page.click("input[name=_save]")

    errors = page.locator(".field-allowed_ips .errorlist")
    assert "invalid CIDR '10.0.0.1/8'" in errors.inner_text()
    assert page.locator("#api-key").count() == 0
    assert not ApiKey.objects.filter(name="billing-service production").exists()
    assert page.input_value("#id_allowed_ips") == "203.0.113.0/24\n10.0.0.1/8"  # what was typed is kept
    screenshot(page, "admin_key_add_error")

    # A scope the client is not allowed: the service refuses, the error lands on the scopes.
    page.fill("#id_allowed_ips", "203.0.113.0/24\n2001:db8::/32")
    page.get_by_label("ai.admin").check()
    with page.expect_navigation():  # else the previous page's error lists may be read before it goes
        page.click("input[name=_save]")
    assert "not allowed for this client: ai.admin" in page.inner_text(".field-scopes .errorlist")
    assert not ApiKey.objects.filter(name="billing-service production").exists()

    page.get_by_label("ai.admin").uncheck()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/add/")) as posted:
        page.click("input[name=_save]")
    response = posted.value
    assert response.status == 200
    assert "no-store" in response.headers["cache-control"]

    plaintext = page.input_value("#api-key")
    assert credentials.is_well_formed(plaintext, "ak"), plaintext
    key = ApiKey.objects.get(name="billing-service production")
    assert page.inner_text("#key-hint") == key.hint == credentials.hint(plaintext)
    assert key.digest == credentials.digest(plaintext) and plaintext not in key.digest
    assert key.scope == "ai.infer" and key.audiences == [RS_AUDIENCE]
    assert key.allowed_ips == ["203.0.113.0/24", "2001:db8::/32"]
    assert (key.rate_limit, key.rate_limit_period, key.quota) == (100, 60, 1_000_000)
    assert timedelta(days=29, hours=23) < key.expires - key.created <= timedelta(days=30)
    assert key.created_by == superuser
    assert plaintext not in page.url
    screenshot(page, "admin_key_shown_once")

    assert key_active(plaintext)
    assert not key_active(plaintext, audience=OTHER_AUDIENCE)  # not one of this key's audiences
    assert not key_active(plaintext, ip="198.51.100.1")  # outside the allowlist

    page.click("#to-key")
    page.wait_for_selector("#apikey_form")
    assert page.url.endswith(key_url(key))
    assert page.locator("input[name=_save]").count() == 0  # the policy is read-only
    assert "cannot be edited" in page.inner_text("#apikey_form")

    # The plaintext (and the digest) are on no page: the list, the change page, the usage page, history.
    pages = [
        admin_url("keys/apikey/"),
        key_url(key),
        key_url(key, "usage"),
        key_url(key, "history"),
        admin_url(f"keys/apikey/?q={quote(key.hint[-4:])}"),
    ]
    assert_nowhere(page, pages, plaintext, key.digest)

    page.goto(admin_url("keys/apikey/"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 4
    listing = page.inner_text("#result_list")
    assert "billing-service production" in listing and key.hint in listing
    assert "Suspended" in listing and "Acme inference" in listing and "Beta analytics" in listing
    assert "digest" not in page.content()
    screenshot(page, "admin_keys_list")

    # Filters: by expiry and by client.
    page.goto(admin_url("keys/apikey/?expiry=soon"))
    assert page.locator("#result_list tbody tr").count() == 1
    assert "batch jobs" in page.inner_text("#result_list")
    page.goto(admin_url(f"keys/apikey/?client__id__exact={other.pk}"))
    assert page.locator("#result_list tbody tr").count() == 1
    assert "dashboards" in page.inner_text("#result_list")
    # Search by client ID.
    page.goto(admin_url(f"keys/apikey/?q={other.client_id}"))
    assert page.locator("#result_list tbody tr").count() == 1


@pytest.mark.django_db
def test_http_add_shows_the_key_once_and_logs_no_secret(http_superuser: HttpClient, owner: Any) -> None:
    once = http_superuser.get(apikey_url("add")).context["once"]
    response = http_superuser.post(apikey_url("add"), add_form(owner, _once=once))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    plaintext = response.context["plaintext"]
    assert response.content.decode().count(plaintext) == 1
    assert not response.cookies.get("messages") and "Location" not in response
    key = ApiKey.objects.get()
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert plaintext not in entry.object_repr and plaintext not in entry.change_message
    # Resubmitting the same form issues nothing and shows nothing.
    again = http_superuser.post(apikey_url("add"), add_form(owner, _once=once), follow=True)
    assert ApiKey.objects.count() == 1
    assert again.redirect_chain[0][0] == apikey_url("change", key.pk)
    assert "already issued" in again.content.decode() and plaintext not in again.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"allowed_ips": "not-an-ip"}, "allowed_ips", "invalid CIDR"),
        ({"allowed_ips": "2001:db8::1/32"}, "allowed_ips", "host bits set"),
        ({"rate_limit": "fast"}, "rate_limit", "N/PERIOD"),
        ({"rate_limit": "10/2d"}, "rate_limit", "1 s to 1 d"),
        ({"expires_in": "3 weeks"}, "expires_in", "invalid duration"),
        ({"expires_in": "9999d"}, "expires_in", "at most"),
        ({"quota": "0"}, "quota", "greater than or equal to 1"),
        ({"audiences": "https://elsewhere.example.test"}, "audiences", "not allowed for this client"),
        ({"name": "   "}, "name", "required"),
    ],
)
@pytest.mark.django_db
def test_http_add_errors_land_on_the_form(
    http_superuser: HttpClient, owner: Any, overrides: dict, field: str, message: str
) -> None:
    response = http_superuser.post(apikey_url("add"), add_form(owner, **overrides))
    assert response.status_code == 200
    assert response.context.get("plaintext") is None
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_http_client_rules_and_field_errors_come_in_one_round(http_superuser: HttpClient, owner: Any) -> None:
    response = http_superuser.post(apikey_url("add"), add_form(
        owner, audiences="https://elsewhere.example.test", rate_limit="fast", expires_in="3 weeks"))
    errors = response.context["adminform"].form.errors
    assert "not allowed for this client" in " ".join(errors.get("audiences", [])), errors
    assert "N/PERIOD" in " ".join(errors.get("rate_limit", [])) and "expires_in" in errors, errors
    assert not ApiKey.objects.exists()
