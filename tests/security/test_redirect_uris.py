"""Redirect-URI tricks at the authorization endpoint (RFC 9700 §4.1, RFC 6749 §4.1.2.1).

The client is registered with exactly ``https://app.example.test/callback``. A redirect URI that
does not match exactly must produce an error page (400) and never a redirect: sending the error,
let alone a code, to an unverified URI is the open-redirector / code-theft attack.
"""

from __future__ import annotations

import pytest

from authserver.oauth.models import Grant
from tests.conftest import LOOPBACK_REDIRECT_URI
from tests.factories import REDIRECT_URI
from tests.helpers import AUTHORIZE_URL, authorize_params, location_query, pkce_pair

pytestmark = pytest.mark.django_db

MISMATCHED = [
    pytest.param(REDIRECT_URI + "?x=1", id="added-query"),
    pytest.param(REDIRECT_URI + "?", id="empty-query"),
    pytest.param("https://APP.example.test/callback", id="host-case"),
    pytest.param("https://app.EXAMPLE.test/callback", id="domain-case"),
    pytest.param("https://app.example.test/Callback", id="path-case"),
    pytest.param("HTTPS://app.example.test/callback", id="scheme-case"),
    pytest.param("https://app.example.test@evil.test/callback", id="userinfo-host-is-evil"),
    pytest.param("https://evil.test@app.example.test/callback", id="userinfo-before-real-host"),
    pytest.param(REDIRECT_URI + "#frag", id="fragment"),
    pytest.param(REDIRECT_URI + "#", id="empty-fragment"),
    pytest.param("javascript:alert(document.domain)//app.example.test/callback", id="javascript"),
    pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
    pytest.param("https://app.example.test%252Fcallback", id="double-encoded-slash"),
    pytest.param("https://app.example.test%2Fcallback", id="encoded-slash"),
    pytest.param("https://app.example.test/callback%2F", id="encoded-trailing-slash"),
    pytest.param("https://app.example.test/%63allback", id="encoded-path-char"),
    pytest.param(REDIRECT_URI + "/", id="trailing-slash"),
    pytest.param(REDIRECT_URI + "/extra", id="extra-path-segment"),
    pytest.param(REDIRECT_URI + "/../callback", id="dot-segments"),
    pytest.param(REDIRECT_URI + ";evil=1", id="path-params"),
    pytest.param("https://app.example.test:8443/callback", id="different-port"),
    pytest.param("https://app.example.test:443/callback", id="explicit-default-port"),
    pytest.param("http://app.example.test/callback", id="http-downgrade"),
    pytest.param("https://app.example.test\\@evil.test/callback", id="backslash-authority"),
    pytest.param("https://app.example.test\\callback", id="backslash-path"),
    pytest.param("https://evil.test\\app.example.test/callback", id="backslash-host"),
    pytest.param(REDIRECT_URI + "\n", id="trailing-newline"),
    pytest.param(" " + REDIRECT_URI, id="leading-space"),
    pytest.param("https://app.example.test/call\nback", id="embedded-newline"),
    pytest.param("https://app.example.test/call\tback", id="embedded-tab"),
    pytest.param("https://app.example\r\n.test/callback", id="crlf-in-host"),
    pytest.param("https://аpp.example.test/callback", id="idn-cyrillic-lookalike"),
    pytest.param("https://xn--pp-8cd.example.test/callback", id="punycode-lookalike"),
    pytest.param("https://app.example.test./callback", id="trailing-dot-host"),
    pytest.param("https://*.example.test/callback", id="wildcard"),
    pytest.param("https://evil.test/callback", id="other-host"),
    pytest.param("https://app.example.test.evil.test/callback", id="suffix-domain"),
    pytest.param("//evil.test/callback", id="scheme-relative"),
    pytest.param("/callback", id="relative"),
    pytest.param("http://127.0.0.1/callback", id="loopback-for-confidential"),
    pytest.param("http://127.0.0.1:53124/callback", id="loopback-port-for-confidential"),
]


def assert_error_page_without_redirect(response, attacker_uri: str) -> None:
    assert response.status_code == 400, (response.status_code, response.get("Location"))
    assert not response.has_header("Location")
    assert b"You have not been redirected" in response.content
    assert "code" not in location_query(response)
    assert not Grant.objects.exists()


@pytest.mark.parametrize("redirect_uri", MISMATCHED)
def test_mismatched_redirect_uri_renders_error_and_never_redirects(client, web_client, user, redirect_uri):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    response = client.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge, redirect_uri=redirect_uri))
    assert_error_page_without_redirect(response, redirect_uri)


@pytest.mark.parametrize(
    "redirect_uri",
    [p for p in MISMATCHED if p.id in {"added-query", "host-case", "userinfo-host-is-evil", "trailing-newline",
                                          "different-port", "http-downgrade", "other-host", "fragment"}],
)
def test_mismatched_redirect_uri_refused_even_with_other_errors(client, web_client, user, redirect_uri):
    """A second error (missing PKCE here) must not make the server redirect to the bad URI instead."""
    app, _ = web_client
    client.force_login(user)
    params = authorize_params(app, challenge="", redirect_uri=redirect_uri)
    del params["code_challenge"]
    response = client.get(AUTHORIZE_URL, params)
    assert_error_page_without_redirect(response, redirect_uri)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.test/callback", id="other-host"),
        pytest.param("https://app.example.test@evil.test/callback", id="userinfo"),
        pytest.param("https://APP.example.test/callback", id="host-case"),
        pytest.param(REDIRECT_URI + "?x=1", id="added-query"),
        pytest.param(REDIRECT_URI + "/", id="trailing-slash"),
    ],
)
def test_tampered_consent_form_redirect_uri(client, web_client, user, redirect_uri):
    """The consent form carries redirect_uri in a hidden field; changing it before approving is refused."""
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    page = client.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge))
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    form.update(redirect_uri=redirect_uri, allow="Authorize")
    response = client.post(AUTHORIZE_URL, form)
    assert_error_page_without_redirect(response, redirect_uri)


def test_unknown_client_never_redirects(client, user):
    client.force_login(user)
    response = client.get(
        AUTHORIZE_URL,
        {"response_type": "code", "client_id": "no-such-client", "redirect_uri": "https://evil.test/cb",
         "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"},
    )
    assert response.status_code == 400
    assert not response.has_header("Location")


def test_registered_redirect_uri_is_accepted(client, web_client, user):
    """Control row: the exact registered URI gets the consent page."""
    app, _ = web_client
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorize_params(app, challenge=pkce_pair()[1]))
    assert response.status_code == 200
    assert response.context["redirect_uri"] == REDIRECT_URI


# -- Native (public) client registered with http://127.0.0.1/callback -------------------------------
NATIVE = [
    pytest.param(LOOPBACK_REDIRECT_URI, 200, id="loopback-exact"),
    pytest.param("http://127.0.0.1:53124/callback", 200, id="loopback-ephemeral-port"),
    pytest.param("http://127.0.0.1:1/callback", 200, id="loopback-port-1"),
    pytest.param("http://localhost/callback", 400, id="localhost"),
    pytest.param("http://localhost:53124/callback", 400, id="localhost-port"),
    pytest.param("http://[::1]:53124/callback", 400, id="ipv6-loopback-not-registered"),
    pytest.param("http://127.0.0.2:53124/callback", 400, id="other-127-address"),
    pytest.param("http://127.0.0.1:53124/callback/x", 400, id="loopback-other-path"),
    pytest.param("http://127.0.0.1:53124/callback?x=1", 400, id="loopback-added-query"),
    pytest.param("https://127.0.0.1:53124/callback", 400, id="loopback-https"),
    pytest.param("http://127.0.0.1:53124@evil.test/callback", 400, id="loopback-userinfo"),
    pytest.param("http://127.0.0.1.evil.test/callback", 400, id="loopback-prefix-domain"),
]


@pytest.mark.parametrize(("redirect_uri", "status"), NATIVE)
def test_native_client_loopback_redirects(client, native_client, user, redirect_uri, status):
    app, _ = native_client
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorize_params(app, challenge=pkce_pair()[1], redirect_uri=redirect_uri))
    if status == 200:
        assert response.status_code == 200
        assert response.context["redirect_uri"] == redirect_uri
    else:
        assert_error_page_without_redirect(response, redirect_uri)
