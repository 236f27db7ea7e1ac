"""The API-key admin's lifecycle: rotate (successor shown once), suspend, resume, revoke; the key page
is read-only, and every change is a CSRF-protected POST that needs ``keys.change_apikey``. The
browser test drives headless Chromium; the ``http_*`` tests use Django's test client.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from authserver import credentials
from keys.models import ApiKey, ApiKeyStatus, CompromiseResponse
from keys.services import api_key_create
from tests.browser.conftest import (
    User,
    admin_login,
    admin_url,
    apikey_url,
    assert_nowhere,
    key_active,
    key_url,
    screenshot,
    staff_with,
)
from tests.factories import RS_AUDIENCE
from tests.helpers import staff_login

browser = pytest.mark.browser
live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)
pytestmark = pytest.mark.usefixtures("fresh_key_counters")


@browser
@live_db
def test_rotate_suspend_resume_revoke(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    key, old_plaintext = api_key_create(
        client=customer, name="mobile backend", audiences=[RS_AUDIENCE], expires_in=timedelta(days=60)
    )
    assert key_active(old_plaintext)

    admin_login(page, superuser)
    page.goto(key_url(key))
    page.click("#key-rotate")
    page.wait_for_selector("#rotate-form")
    assert page.input_value("#id_grace") == "24h"
    screenshot(page, "admin_key_rotate")

    page.fill("#id_grace", "40d")
    page.click("#rotate-submit")
    assert "at most 30 days" in page.inner_text("#rotate-form .errorlist")
    assert not ApiKey.objects.filter(rotated_from=key).exists()

    page.fill("#id_grace", "2h")
    with page.expect_response(lambda r: r.request.method == "POST" and "/rotate/" in r.url) as posted:
        page.click("#rotate-submit")
    assert "no-store" in posted.value.headers["cache-control"]
    successor_plaintext = page.input_value("#api-key")
    assert credentials.is_well_formed(successor_plaintext, "ak")
    assert successor_plaintext != old_plaintext
    assert key.hint in page.inner_text("#previous-key")
    screenshot(page, "admin_key_rotated")

    successor = ApiKey.objects.get(rotated_from=key)
    key.refresh_from_db()
    assert 7100 < (key.grace_ends - timezone.now()).total_seconds() <= 7200
    assert successor.audiences == key.audiences and successor.scope == key.scope
    assert key_active(successor_plaintext) and key_active(old_plaintext)  # both work during the grace period

    page.click("#to-key")
    page.wait_for_selector("#apikey_form")
    assert page.url.endswith(key_url(successor))
    assert_nowhere(
        page,
        [key_url(successor), key_url(key), admin_url("keys/apikey/"), key_url(successor, "usage")],
        successor_plaintext,
        old_plaintext,
    )
    page.goto(key_url(key))
    assert "Rotated: works until" in page.inner_text(".field-status_display")
    assert page.locator("#key-rotate").count() == 0  # a key is rotated once

    page.goto(key_url(successor))
    page.click("#key-suspend")
    page.wait_for_selector(".messagelist .success")
    assert "suspended" in page.inner_text(".messagelist")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.SUSPENDED
    assert not key_active(successor_plaintext)
    assert page.locator("#key-suspend").count() == 0
    screenshot(page, "admin_key_suspended")

    page.click("#key-resume")
    page.wait_for_selector(".messagelist .success")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE
    assert key_active(successor_plaintext)

    page.click("#key-revoke")
    page.wait_for_selector("#revoke-form")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE  # the GET changed nothing
    screenshot(page, "admin_key_revoke")
    page.click("#revoke-submit")
    page.wait_for_selector(".messagelist .success")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.REVOKED
    assert not key_active(successor_plaintext)
    assert "Revoked" in page.inner_text(".field-status_display")
    assert page.locator("#key-revoke, #key-suspend, #key-rotate").count() == 0
    assert key_active(old_plaintext)  # the predecessor is still inside its grace period


@pytest.mark.django_db
def test_http_change_page_is_read_only(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="fixed", audiences=[RS_AUDIENCE])
    assert http_superuser.post(apikey_url("change", key.pk), {"name": "renamed", "scope": "x"}).status_code == 405
    key.refresh_from_db()
    assert key.name == "fixed"
    page = http_superuser.get(apikey_url("change", key.pk)).content.decode()
    assert 'name="_save"' not in page and key.digest not in page
    assert apikey_url("delete", key.pk) not in page
    assert http_superuser.get(apikey_url("delete", key.pk)).status_code == 403
    listing = http_superuser.get(apikey_url("changelist")).content.decode()
    assert "delete_selected" not in listing


@pytest.mark.django_db
def test_http_lifecycle_needs_change_permission(owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="guarded", audiences=[RS_AUDIENCE])
    viewer = staff_with("view_apikey", "view_client", "change_client")
    assert viewer.get(apikey_url("change", key.pk)).status_code == 200
    assert viewer.get(apikey_url("usage", key.pk)).status_code == 200
    for name in ("rotate", "revoke"):
        assert viewer.get(apikey_url(name, key.pk)).status_code == 403
    for name, data in (("rotate", {"grace": "1h"}), ("revoke", {"confirm": "yes"}), ("suspend", {}), ("resume", {})):
        assert viewer.post(apikey_url(name, key.pk), data).status_code == 403
    assert viewer.post(apikey_url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.ACTIVE and not ApiKey.objects.filter(rotated_from=key).exists()
    assert not CompromiseResponse.objects.exists()
    page = viewer.get(apikey_url("change", key.pk)).content.decode()
    for fragment in ("/rotate/", "/revoke/", "/suspend/", "/resume/", "/compromise/"):
        assert fragment not in page
    listing = viewer.get(apikey_url("changelist"), {"client__id__exact": owner.pk}).content.decode()
    assert "compromise_response" not in listing and "/compromise/" not in listing


@pytest.mark.django_db
def test_http_lifecycle_is_csrf_protected_post(owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="csrf", audiences=[RS_AUDIENCE])
    http = HttpClient(enforce_csrf_checks=True)
    staff_login(http, User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    for name, data in (("rotate", {"grace": "1h"}), ("revoke", {"confirm": "yes"}), ("suspend", {}), ("resume", {})):
        assert http.post(apikey_url(name, key.pk), data).status_code == 403
    assert http.post(apikey_url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    # GETs show confirmation pages (or refuse) and never change anything.
    assert http.get(apikey_url("rotate", key.pk)).status_code == 200
    assert http.get(apikey_url("revoke", key.pk)).status_code == 200
    assert http.get(apikey_url("compromise", owner.pk)).status_code == 200
    assert http.get(apikey_url("suspend", key.pk)).status_code == 405
    assert http.get(apikey_url("resume", key.pk)).status_code == 405
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.ACTIVE and key.grace_ends is None
    assert not CompromiseResponse.objects.exists()


@pytest.mark.django_db
def test_http_resubmitting_a_rotation_does_not_rotate_again(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="once", audiences=[RS_AUDIENCE])
    once = http_superuser.get(apikey_url("rotate", key.pk)).context["once"]
    first = http_superuser.post(apikey_url("rotate", key.pk), {"grace": "1h", "_once": once})
    assert first.status_code == 200 and first.context["plaintext"]
    successor = ApiKey.objects.get(rotated_from=key)
    again = http_superuser.post(apikey_url("rotate", key.pk), {"grace": "1h", "_once": once})
    assert again.status_code == 302 and again["Location"] == apikey_url("change", successor.pk)
    assert ApiKey.objects.count() == 2
    assert first.context["plaintext"] not in http_superuser.get(again["Location"]).content.decode()


@pytest.mark.django_db
def test_http_client_with_keys_can_still_be_deleted(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    confirm = http_superuser.get(reverse("admin:clients_client_delete", args=[owner.pk]))
    assert confirm.status_code == 200 and not confirm.context["perms_lacking"]
