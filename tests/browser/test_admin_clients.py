"""The client admin in a real browser: create (secret shown once), rotate, revoke."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.conf import settings

from authserver import credentials
from clients.models import Client
from clients.services import client_register, scope_create
from tests.browser.conftest import admin_login, screenshot
from tests.factories import RS_AUDIENCE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CALLBACK = "https://app.example.test/cb"


def client_credentials_token(live_server: Any, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{live_server.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "ai.infer"},
        auth=(client_id, secret),
        timeout=10,
    )


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def test_create_client_shows_secret_once(page: Any, live_server: Any, superuser: Any) -> None:
    scope_create(name="ai.infer", description="Run inference")
    scope_create(name="ai.admin", description="Manage models")
    client_register(
        name="Inference API",
        client_type="confidential",
        grant_types=["client_credentials"],
        resource_server_audience=RS_AUDIENCE,
    )
    admin_login(page, superuser, shot="admin_login")

    page.goto(admin_url("clients/client/"))
    assert page.locator("#result_list").get_by_text("Inference API").count() == 1
    screenshot(page, "admin_client_list")

    page.click(".object-tools a.addlink")
    page.fill("#id_name", "Web app")
    page.check("#id_client_type_0")  # confidential
    page.check("input[name=grant_types][value=authorization_code]")
    page.check("input[name=grant_types][value=client_credentials]")
    page.fill("#id_redirect_uris", "http://evil.example/cb")
    page.get_by_label("ai.infer").check()
    page.get_by_label(f"Inference API — {RS_AUDIENCE}").check()
    page.click("input[name=_save]")

    errors = page.locator(".field-redirect_uris .errorlist")
    assert "http redirect URIs are allowed only for 127.0.0.1" in errors.inner_text()
    assert page.locator("#client-secret").count() == 0
    assert not Client.objects.filter(name="Web app").exists()
    # The form keeps what was typed.
    assert page.input_value("#id_redirect_uris") == "http://evil.example/cb"
    assert page.is_checked("input[name=grant_types][value=client_credentials]")
    screenshot(page, "admin_add_client_error")

    page.fill("#id_redirect_uris", CALLBACK)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/add/")) as posted:
        page.click("input[name=_save]")
    response = posted.value
    assert response.status == 200
    assert "no-store" in response.headers["cache-control"]

    secret = page.input_value("#client-secret")
    assert credentials.is_well_formed(secret, "cs"), secret
    client = Client.objects.get(name="Web app")
    assert page.inner_text("#client-id") == client.client_id
    assert client.grant_types == ["authorization_code", "client_credentials"]
    assert client.redirect_uris == CALLBACK
    assert client.allowed_audiences == [RS_AUDIENCE]
    assert [s.name for s in client.allowed_scopes.all()] == ["ai.infer"]
    assert secret not in client.client_secret  # hashed at rest
    assert secret not in page.url
    screenshot(page, "admin_secret_shown_once")

    token = client_credentials_token(live_server, client.client_id, secret)
    assert token.status_code == 200, token.text
    assert credentials.is_well_formed(token.json()["access_token"], "at")

    page.click("#to-client")
    page.wait_for_selector("#client_form")
    assert page.url.endswith(admin_url(f"clients/client/{client.pk}/change/"))
    html = page.content()
    assert secret not in html
    assert client.client_secret not in html  # nor its digest
    assert 'name="client_secret"' not in html
    assert client.client_secret_hint in page.inner_text(".field-client_secret_hint")
    screenshot(page, "admin_client_change")

    # Nowhere else either: the list, the history, the secret page revisited by URL.
    for path in ("clients/client/", f"clients/client/{client.pk}/history/"):
        page.goto(admin_url(path))
        assert secret not in page.content()


def test_change_form_keeps_redirect_uri_policy(page: Any, live_server: Any, superuser: Any) -> None:
    client, _ = client_register(
        name="Editable",
        client_type="confidential",
        grant_types=["authorization_code"],
        redirect_uris=[CALLBACK],
    )
    admin_login(page, superuser)
    page.goto(admin_url(f"clients/client/{client.pk}/change/"))
    assert page.input_value("#id_redirect_uris") == CALLBACK
    page.fill("#id_redirect_uris", f"{CALLBACK}\nhttps://app.example.test/cb#fragment")
    page.click("input[name=_save]")
    assert "fragment" in page.inner_text(".field-redirect_uris .errorlist")
    client.refresh_from_db()
    assert client.redirect_uris == CALLBACK

    page.fill("#id_redirect_uris", f"{CALLBACK}\nhttps://app.example.test/other")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    client.refresh_from_db()
    assert client.redirect_uris == f"{CALLBACK} https://app.example.test/other"


def test_rotate_secret_then_revoke_all_tokens(page: Any, live_server: Any, superuser: Any) -> None:
    scope_create(name="ai.infer", description="Run inference")
    client, old_secret = client_register(
        name="Batch worker",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["ai.infer"],
        audiences=[RS_AUDIENCE],
        allow_unregistered_audience=True,  # no resource server registered in this test
    )
    assert old_secret is not None
    assert client_credentials_token(live_server, client.client_id, old_secret).status_code == 200
    old_hint = client.client_secret_hint

    admin_login(page, superuser)
    page.goto(admin_url(f"clients/client/{client.pk}/change/"))
    page.click("text=Rotate secret")
    page.wait_for_selector("#rotate-form")
    assert page.input_value("#id_grace_hours") == "24"
    screenshot(page, "admin_rotate_secret")

    page.fill("#id_grace_hours", "2")
    with page.expect_response(lambda r: r.request.method == "POST" and "rotate-secret" in r.url) as posted:
        page.click("#rotate-submit")
    assert "no-store" in posted.value.headers["cache-control"]
    new_secret = page.input_value("#client-secret")
    assert credentials.is_well_formed(new_secret, "cs")
    assert new_secret != old_secret
    retired = page.inner_text("#retired-secrets")
    assert old_hint in retired
    screenshot(page, "admin_secret_rotated")

    client.refresh_from_db()
    assert client.client_secret_hint != old_hint
    (row,) = client.retired_secrets.all()
    assert 7100 < (row.expires - row.retired).total_seconds() <= 7200

    # Both secrets authenticate during the grace period.
    for secret in (old_secret, new_secret):
        answer = client_credentials_token(live_server, client.client_id, secret)
        assert answer.status_code == 200, answer.text

    # The token list identifies tokens by hint only.
    page.goto(admin_url("oauth/accesstoken/"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3
    listing = page.content()
    for token in client.accesstoken_set.all():
        assert token.hint in listing and token.token_checksum not in listing
    assert "Batch worker" in page.inner_text("#result_list") and RS_AUDIENCE in page.inner_text("#result_list")
    screenshot(page, "admin_access_tokens")
    page.click("#result_list tbody tr:first-child th a")
    page.wait_for_selector(".field-hint")
    detail = page.content()
    assert all(t.token_checksum not in detail for t in client.accesstoken_set.all())
    assert page.locator("input[name=_save]").count() == 0  # view-only
    screenshot(page, "admin_access_token_detail")
    page.goto(admin_url())
    screenshot(page, "admin_index")

    page.goto(admin_url(f"clients/client/{client.pk}/change/"))
    assert new_secret not in page.content() and old_secret not in page.content()
    assert old_hint in page.inner_text("#retired_secrets-group")

    page.click("text=Revoke all tokens")
    page.wait_for_selector("#revoke-form")
    assert "Live access tokens" in page.inner_text("#revoke-form")
    screenshot(page, "admin_revoke_tokens")
    page.click("#revoke-submit")
    message = page.inner_text(".messagelist")
    assert "Revoked 3 access tokens, 0 refresh tokens and 0 pending authorization codes." in message
    assert client.accesstoken_set.count() == 0
    screenshot(page, "admin_tokens_revoked")


def test_rotate_page_get_changes_nothing(page: Any, live_server: Any, superuser: Any) -> None:
    client, _ = client_register(name="Quiet", client_type="confidential", grant_types=["client_credentials"])
    hint = client.client_secret_hint
    admin_login(page, superuser)
    page.goto(admin_url(f"clients/client/{client.pk}/rotate-secret/"))
    page.goto(admin_url(f"clients/client/{client.pk}/revoke-tokens/"))
    client.refresh_from_db()
    assert client.client_secret_hint == hint
    assert not client.retired_secrets.exists()
