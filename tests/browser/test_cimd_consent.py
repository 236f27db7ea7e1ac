"""The consent page of a client known only by its metadata document, in a real browser: the
"unverified app" notice with the document's host, then Allow, the redirect, and a working code."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from clients.models import Client
from tests.browser.conftest import screenshot
from tests.browser.test_consent import CALLBACK, submit_login
from tests.conftest import pkce_pair
from tests.factories import PASSWORD, RS_AUDIENCE, ScopeFactory, UserFactory
from tests.oauth.cimd.docserver import DocumentServer, json_answer, make_ca

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_document_client_consent_names_the_host(page: Any, live_server: Any, fake_app: Any, settings: Any,
                                                tmp_path: Any) -> None:
    ca, cert, key = make_ca(tmp_path)
    docs = DocumentServer(cert, key)
    try:
        settings.CIMD, settings.CIMD_ALLOW_PRIVATE, settings.CIMD_CA_FILE = "on", True, ca
        settings.REGISTRABLE_SCOPES, settings.REGISTRABLE_AUDIENCES = ["ai.infer"], [RS_AUDIENCE]
        ScopeFactory(name="ai.infer", description="Run inference on your behalf")
        UserFactory(username="carol")
        url = docs.url("/agent.json", host="localhost")
        docs.routes["/agent.json"] = json_answer({
            "client_id": url, "client_name": "Helpful Agent", "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"})
        fake_app.hits.clear()
        verifier, challenge = pkce_pair()
        page.goto("/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": url, "redirect_uri": CALLBACK, "scope": "ai.infer",
            "state": "st-cimd", "code_challenge": challenge, "code_challenge_method": "S256"}))
        page.fill("#id_username", "carol")
        page.fill("#id_password", PASSWORD)
        submit_login(page)
        page.wait_for_selector("#authorizationForm")
        assert "Authorize Helpful Agent" in page.inner_text("h1")
        notice = page.inner_text("#unverified-app")
        assert "Unverified app" in notice and f"localhost:{docs.port}" in notice
        assert page.inner_text("#document-host") == f"localhost:{docs.port}"
        screenshot(page, "consent-cimd")

        with page.expect_navigation(url="https://app.example.test/**"):
            page.click("button[name=allow]")
        params = parse_qs(urlsplit(page.url).query)
        assert params["state"] == ["st-cimd"]
        token = requests.post(f"{live_server.url}/oauth/token", timeout=10, data={
            "grant_type": "authorization_code", "code": params["code"][0], "redirect_uri": CALLBACK,
            "code_verifier": verifier, "client_id": url})
        assert token.status_code == 200, token.text
        assert Client.objects.get(client_id=url).registration_source == "cimd"
        assert docs.hits == {"/agent.json": 1}
    finally:
        docs.close()
