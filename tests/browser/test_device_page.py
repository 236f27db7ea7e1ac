"""The device page (RFC 8628 §3.3) in a real browser: from verification_uri_complete through
sign-in, the pre-filled code, the consent screen and Allow; in German, a wrong code and Deny."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client as HttpClient

from authserver.oauth.device.models import DeviceAuthorization
from clients.services import scope_create
from tests.browser.conftest import screenshot
from tests.browser.test_consent import submit_login
from tests.factories import PASSWORD, UserFactory, make_client, make_resource_server
from tests.oauth.device.flow import poll, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _device_started() -> tuple[Any, dict[str, Any]]:
    UserFactory(username="alice")
    scope_create(name="ai.infer", description="Run inference on your behalf")
    rs, _ = make_resource_server()
    rs.name = "Chat API"
    rs.save(update_fields=["name"])
    app, _ = make_client(name="Terminal agent", client_type="public", grant_types=["device_code"],
                         scopes=["ai.infer"])
    return app, start(HttpClient(), app, scope="ai.infer").json()


def _sign_in(page: Any) -> None:
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    submit_login(page)


def test_device_approved_from_the_complete_uri(page: Any) -> None:
    app, codes = _device_started()
    complete = urlsplit(codes["verification_uri_complete"])
    page.goto(f"{complete.path}?{complete.query}")
    assert urlsplit(page.url).path == "/accounts/login/"
    _sign_in(page)
    page.wait_for_selector("#device-code-form")
    assert page.input_value("#id_user_code") == codes["user_code"]
    screenshot(page, "device_code")
    page.click("#continue")
    page.wait_for_selector("#device-decision")
    assert "Connect Terminal agent?" in page.inner_text("h1")
    main = page.inner_text("main")
    assert codes["user_code"] in main and "Chat API" in main and "Run inference on your behalf" in main
    screenshot(page, "device_consent")
    page.click("#allow")
    page.wait_for_selector("#device-result")
    assert page.inner_text("h1") == "Device connected"
    screenshot(page, "device_allowed")
    assert DeviceAuthorization.objects.get().status == "authorized"
    assert poll(HttpClient(), app, codes["device_code"]).status_code == 200


def test_german_wrong_code_then_deny(browser: Any, live_server: Any) -> None:
    app, codes = _device_started()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  locale="de-DE", ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/accounts/device")
        _sign_in(page)
        page.wait_for_selector("#device-code-form")
        assert page.inner_text("h1") == "Gerät verbinden"
        page.fill("#id_user_code", "BCDF-GHJK")
        page.click("#continue")
        page.wait_for_selector("#device-error")
        assert "Dieser Code ist nicht gültig" in page.inner_text("#device-error")
        screenshot(page, "device_invalid_de")
        page.fill("#id_user_code", codes["user_code"].lower())
        page.click("#continue")
        page.wait_for_selector("#device-decision")
        assert page.inner_text("h1") == "Terminal agent verbinden?"
        assert page.inner_text("#deny") == "Ablehnen" and page.inner_text("#allow") == "Erlauben"
        screenshot(page, "device_consent_de")
        page.click("#deny")
        page.wait_for_selector("#device-result")
        assert page.inner_text("h1") == "Zugriff abgelehnt"
        screenshot(page, "device_denied_de")
    finally:
        context.close()
    assert poll(HttpClient(), app, codes["device_code"]).json()["error"] == "access_denied"
