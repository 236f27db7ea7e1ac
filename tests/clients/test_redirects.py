"""Redirect-URI registration policy (clients.redirects) and request-time matching (Client).

RFC 9700 §2.1 / §4.1: exact matching, no wildcards; RFC 6749 §3.1.2: no fragment; RFC 8252 §7.3,
§8.3: http only for loopback IP literals of native (public) clients, never ``http://localhost``;
``https://localhost`` is an https URI like any other (the browser checks its certificate).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clients.models import Client
from clients.redirects import MAX_LENGTH, redirect_uri_matches, validate_redirect_uri, validate_redirect_uris
from tests.factories import REDIRECT_URI, make_client

# (uri, public_client) rows that registration must refuse.
REFUSED = [
    pytest.param("https://app.example.test/callback#frag", False, id="fragment"),
    pytest.param("https://app.example.test/callback#", False, id="empty-fragment"),
    pytest.param("https://app.example.test@evil.test/callback", False, id="userinfo-host-is-evil"),
    pytest.param("https://evil.test@app.example.test/callback", False, id="userinfo-before-real-host"),
    pytest.param("https://user:pw@app.example.test/callback", False, id="userinfo-with-password"),
    pytest.param("javascript:alert(document.cookie)", False, id="javascript-scheme"),
    pytest.param("JavaScript://app.example.test/%0aalert(1)", False, id="javascript-scheme-authority-trick"),
    pytest.param("data:text/html,<script>alert(1)</script>", False, id="data-scheme"),
    pytest.param("file:///etc/passwd", False, id="file-scheme"),
    pytest.param("ftp://app.example.test/callback", False, id="ftp-scheme"),
    pytest.param("com.example.app:/callback", True, id="private-use-scheme"),
    pytest.param("https://app.example.test%2Fcallback", False, id="encoded-slash-in-authority"),
    pytest.param("https://app.example.test%252Fcallback", False, id="double-encoded-slash-in-authority"),
    pytest.param("https://app.example.test%2F@evil.test/callback", False, id="encoded-slash-plus-userinfo"),
    pytest.param("https://evil.test%2Eapp.example.test/callback", False, id="encoded-dot-in-host"),
    pytest.param("https://app.example.test\\@evil.test/callback", False, id="backslash-in-authority"),
    pytest.param("https://app.example.test\\callback", False, id="backslash-in-path"),
    pytest.param("https://app.example.test/callback\n", False, id="trailing-newline"),
    pytest.param("https://app.example.test/call\nback", False, id="embedded-newline"),
    pytest.param("https://app.example.test/call\rback", False, id="embedded-cr"),
    pytest.param("https://app.example.test/call\tback", False, id="embedded-tab"),
    pytest.param(" https://app.example.test/callback", False, id="leading-space"),
    pytest.param("https://app.example.test/call back", False, id="embedded-space"),
    pytest.param("https://app.example.test/callback\x00", False, id="nul-byte"),
    pytest.param("https://аpp.example.test/callback", False, id="idn-cyrillic-a-lookalike"),
    pytest.param("https://app.exаmple.test/callback", False, id="idn-cyrillic-in-domain"),
    pytest.param("https://app.example.test/callbаck", False, id="unicode-in-path"),
    pytest.param("https://app.example.test\u3002evil.test/callback", False, id="ideographic-full-stop"),
    pytest.param("https://*.example.test/callback", False, id="wildcard-host"),
    pytest.param("https://app.example.test/*", False, id="wildcard-path"),
    pytest.param("https://APP.example.test/callback", False, id="uppercase-host"),
    pytest.param("https://app.example.test./callback", False, id="trailing-dot-host"),
    pytest.param("https://app..example.test/callback", False, id="empty-label"),
    pytest.param("https://app_x.example.test/callback", False, id="underscore-in-host"),
    pytest.param("https://app.example.test:0/callback", False, id="port-zero"),
    pytest.param("https://app.example.test:99999/callback", False, id="port-out-of-range"),
    pytest.param("https://app.example.test:abc/callback", False, id="port-not-numeric"),
    pytest.param("https:///callback", False, id="no-host"),
    pytest.param("https:/app.example.test/callback", False, id="single-slash"),
    pytest.param("//app.example.test/callback", False, id="scheme-relative"),
    pytest.param("/callback", False, id="relative"),
    pytest.param("", False, id="empty"),
    pytest.param("https://app.example.test/" + "a" * MAX_LENGTH, False, id="too-long"),
    pytest.param("http://app.example.test/callback", False, id="http-non-loopback-confidential"),
    pytest.param("http://app.example.test/callback", True, id="http-non-loopback-public"),
    pytest.param("http://localhost/callback", True, id="localhost-public"),
    pytest.param("http://localhost:8080/callback", True, id="localhost-port-public"),
    pytest.param("http://localhost/callback", False, id="localhost-confidential"),
    pytest.param("http://LOCALHOST/callback", True, id="localhost-uppercase-public"),
    pytest.param("https://LOCALHOST/callback", False, id="https-localhost-uppercase"),
    pytest.param("http://127.0.0.1/callback", False, id="loopback-http-confidential"),
    pytest.param("http://[::1]/callback", False, id="loopback-v6-http-confidential"),
    pytest.param("http://127.0.0.2/callback", True, id="other-127-address-public"),
    pytest.param("http://127.0.0.1.evil.test/callback", True, id="loopback-prefix-domain-public"),
    pytest.param("http://0x7f000001/callback", True, id="hex-loopback-public"),
]

ACCEPTED = [
    pytest.param("https://app.example.test/callback", False, id="https"),
    pytest.param("https://app.example.test/callback?tenant=1", False, id="https-with-query"),
    pytest.param("https://app.example.test:8443/callback", False, id="https-with-port"),
    pytest.param("https://app.example.test/callback/", False, id="trailing-slash"),
    pytest.param("https://app.example.test/a%2Fb", False, id="encoded-slash-in-path"),
    pytest.param("https://xn--pp-8cd.example.test/callback", False, id="punycode-host"),
    pytest.param("https://app.example.test/callback", True, id="https-public"),
    pytest.param("http://127.0.0.1/callback", True, id="loopback-v4-public"),
    pytest.param("http://127.0.0.1:53124/callback", True, id="loopback-v4-port-public"),
    pytest.param("http://[::1]/callback", True, id="loopback-v6-public"),
    pytest.param("http://[::1]:8080/callback", True, id="loopback-v6-port-public"),
    # https names are certificate-checked, localhost included (README: Redirect URIs).
    pytest.param("https://localhost/callback", False, id="https-localhost-confidential"),
    pytest.param("https://localhost:8443/callback", True, id="https-localhost-port-public"),
    pytest.param("https://127.0.0.1/callback", False, id="https-loopback-ip"),
]


@pytest.mark.parametrize(("uri", "public"), REFUSED)
def test_registration_refuses(uri: str, public: bool) -> None:
    with pytest.raises(ValidationError):
        validate_redirect_uri(uri, public_client=public)


@pytest.mark.parametrize(("uri", "public"), ACCEPTED)
def test_registration_accepts(uri: str, public: bool) -> None:
    validate_redirect_uri(uri, public_client=public)  # no exception


def test_list_validation_reports_every_bad_uri_and_deduplicates() -> None:
    assert validate_redirect_uris([REDIRECT_URI, REDIRECT_URI], public_client=False) == [REDIRECT_URI]
    with pytest.raises(ValidationError) as exc:
        validate_redirect_uris([REDIRECT_URI, "https://a.test/#x", "javascript:x"], public_client=False)
    assert len(exc.value.messages) == 2


# Through the service that the CLI and admin use: refused, and nothing stored.
SERVICE_REFUSED = [
    pytest.param("confidential", "https://app.example.test/callback#x", id="fragment"),
    pytest.param("confidential", "https://evil.test@app.example.test/callback", id="userinfo"),
    pytest.param("confidential", "https://*.example.test/callback", id="wildcard"),
    pytest.param("confidential", "javascript:alert(1)", id="javascript"),
    pytest.param("confidential", "http://127.0.0.1/callback", id="loopback-confidential"),
    pytest.param("public", "http://localhost/callback", id="localhost-public"),
    pytest.param("public", "https://аpp.example.test/callback", id="idn-lookalike"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("client_type", "uri"), SERVICE_REFUSED)
def test_client_register_refuses_bad_redirect(client_type: str, uri: str) -> None:
    with pytest.raises(ValidationError) as exc:
        make_client(client_type=client_type, grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI, uri])
    assert "redirect_uris" in exc.value.message_dict
    assert not Client.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client_type", "uri"),
    [
        pytest.param("confidential", REDIRECT_URI, id="https-confidential"),
        pytest.param("public", "http://127.0.0.1/callback", id="loopback-public"),
        pytest.param("public", "http://[::1]:8080/callback", id="loopback-v6-public"),
    ],
)
def test_client_register_accepts_good_redirect(client_type: str, uri: str) -> None:
    client, _ = make_client(client_type=client_type, grant_types=["authorization_code"], redirect_uris=[uri])
    assert client.redirect_uris == uri


@pytest.mark.django_db
def test_authorization_code_client_needs_a_redirect_uri() -> None:
    with pytest.raises(ValidationError):
        make_client(grant_types=["authorization_code"], redirect_uris=[])
    assert not Client.objects.exists()


# Request-time matching (RFC 9700 §2.1: exact string comparison; RFC 8252 §7.3: any loopback port).
REGISTERED = [REDIRECT_URI, "http://127.0.0.1/native", "http://[::1]:8080/native6", "https://localhost/cb"]
MATCHING = [
    pytest.param(REDIRECT_URI, True, id="exact"),
    pytest.param("http://127.0.0.1/native", True, id="loopback-exact"),
    pytest.param("http://127.0.0.1:53124/native", True, id="loopback-any-port"),
    pytest.param("http://[::1]/native6", True, id="loopback-v6-no-port"),
    pytest.param("http://[::1]:1/native6", True, id="loopback-v6-other-port"),
    pytest.param("https://APP.example.test/callback", False, id="host-case"),
    pytest.param("HTTPS://app.example.test/callback", False, id="scheme-case"),
    pytest.param("https://app.example.test/Callback", False, id="path-case"),
    pytest.param(REDIRECT_URI + "\n", False, id="trailing-newline"),
    pytest.param("https://app.example.test/call\tback", False, id="embedded-tab"),
    pytest.param(REDIRECT_URI + "?", False, id="empty-query"),
    pytest.param(REDIRECT_URI + "?x=1", False, id="added-query"),
    pytest.param(REDIRECT_URI + "/", False, id="trailing-slash"),
    pytest.param("https://app.example.test:443/callback", False, id="explicit-default-port"),
    pytest.param("https://app.example.test:8443/callback", False, id="other-port"),
    pytest.param("http://127.0.0.1:53124/native/x", False, id="loopback-other-path"),
    pytest.param("http://localhost:53124/native", False, id="localhost-not-loopback"),
    pytest.param("https://localhost/cb", True, id="https-localhost-exact"),
    pytest.param("https://localhost:8443/cb", False, id="https-localhost-port-is-exact"),
    pytest.param("http://localhost/cb", False, id="https-localhost-not-http"),
    pytest.param("https://127.0.0.1:53124/native", False, id="loopback-https-scheme-differs"),
    pytest.param("http://127.0.0.1:53124@evil.test/native", False, id="loopback-userinfo"),
    pytest.param("http://127.0.0.1.evil.test/native", False, id="loopback-prefix-domain"),
    pytest.param("", False, id="empty"),
    pytest.param(None, False, id="none"),
]


@pytest.mark.parametrize(("uri", "expected"), MATCHING)
def test_redirect_uri_matches(uri: str, expected: bool) -> None:
    assert redirect_uri_matches(uri, REGISTERED) is expected


@pytest.mark.parametrize(("uri", "expected"), [p for p in MATCHING if p.values[0] is not None])
def test_client_redirect_uri_allowed(uri: str, expected: bool) -> None:
    client = Client(redirect_uris=" ".join(REGISTERED), client_id="x")
    assert client.redirect_uri_allowed(uri) is expected
