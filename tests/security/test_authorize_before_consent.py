"""The whole authorization request is checked before the user is asked (issue 12, item 9).

A malformed S256 challenge (RFC 7636 §4.2: exactly 43 base64url characters), the "plain" method
(RFC 9700 §2.1.1) and a resource the client is not registered for (RFC 8707 §2) are refused at
GET /oauth/authorize with an error redirect to the verified redirect URI (RFC 6749 §4.1.2.1,
with state and iss), no consent page and no code; and again at code creation when the consent
form's hidden fields were changed after the page was shown.
"""

from __future__ import annotations

import pytest

from authserver.audit.models import AuditEvent
from authserver.oauth.models import Grant
from tests.factories import REDIRECT_URI, RS_AUDIENCE
from tests.helpers import AUTHORIZE_URL, authorize_params, location_query, pkce_pair

pytestmark = pytest.mark.django_db

# Each row: parameters changed in an otherwise valid request, and the error expected.
REFUSED_BEFORE_CONSENT = [
    pytest.param({"code_challenge": "a" * 42}, "invalid_request", id="challenge-42-chars"),
    pytest.param({"code_challenge": "a" * 44}, "invalid_request", id="challenge-44-chars"),
    pytest.param({"code_challenge": "a" * 128}, "invalid_request", id="challenge-128-chars"),
    pytest.param({"code_challenge": "a" * 129}, "invalid_request", id="challenge-129-chars"),
    pytest.param({"code_challenge": "a+/" + "a" * 40}, "invalid_request", id="challenge-base64-not-url"),
    pytest.param({"code_challenge": "a" * 42 + "="}, "invalid_request", id="challenge-padded"),
    pytest.param({"code_challenge": "a" * 42 + "."}, "invalid_request", id="challenge-dot"),
    pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="method-plain"),
    pytest.param({"code_challenge_method": "plain", "code_challenge": "a" * 43}, "invalid_request",
                 id="method-plain-43-chars"),
    pytest.param({"resource": "https://unknown.example.test"}, "invalid_target", id="unknown-resource"),
    pytest.param({"resource": "https://api.example.test\x00"}, "invalid_target", id="nul-in-resource"),
    pytest.param({"state": "xyz\x00"}, "invalid_request", id="nul-in-state"),
    pytest.param({"state": "xyz\u00e9"}, "invalid_request", id="non-ascii-state"),
]


def _no_consent(response):
    return response.status_code != 200 or "form" not in (response.context or {})


@pytest.mark.parametrize(("changes", "error"), REFUSED_BEFORE_CONSENT)
def test_refused_before_consent_with_an_error_redirect(client, web_client, user, changes, error):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    response = client.get(AUTHORIZE_URL, {**authorize_params(app, challenge=challenge), **changes})
    assert _no_consent(response)
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT_URI + "?")
    query = location_query(response)
    assert query["error"] == [error]
    assert query["state"] == [changes.get("state", "xyz")]  # RFC 6749 §4.1.2.1: echoed as sent
    assert "iss" in query
    assert "code" not in query
    # RFC 6749 §4.1.2.1: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in query.get("error_description", [""])[0])
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.filter(event__startswith="consent.").exists()


def test_registered_resource_still_shows_consent(client, web_client, user):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    response = client.get(AUTHORIZE_URL, {**authorize_params(app, challenge=challenge), "resource": RS_AUDIENCE})
    assert response.status_code == 200
    assert "form" in response.context


def test_request_without_state_still_issues_a_code(client, web_client, user):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    page = client.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge, state=None))
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(AUTHORIZE_URL, {**form, "allow": "Authorize"})
    assert response.status_code == 302
    assert "code" in location_query(response)


def test_native_client_error_goes_to_its_loopback_redirect_uri(client, native_client, user):
    """DOT passes no client for errors found while validating; the loopback http redirect URI
    (RFC 8252 §7.3) is allowed for this client and must still be reachable with the error."""
    app, _ = native_client
    client.force_login(user)
    _, challenge = pkce_pair()
    params = authorize_params(app, challenge=challenge, redirect_uri="http://127.0.0.1/callback",
                              code_challenge_method="plain")
    response = client.get(AUTHORIZE_URL, params)
    assert response.status_code == 302
    assert response["Location"].startswith("http://127.0.0.1/callback?")
    assert location_query(response)["error"] == ["invalid_request"]
    assert not Grant.objects.exists()


# Hidden fields changed after a valid consent page was shown: refused when the code would be created.
TAMPERED_FORMS = [
    pytest.param({"code_challenge": "a" * 42}, "invalid_request", id="challenge-42-chars"),
    pytest.param({"code_challenge": "a+/=" * 11}, "invalid_request", id="challenge-base64-not-url"),
    pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="method-plain"),
    pytest.param({"resource": "https://unknown.example.test"}, "invalid_target", id="unknown-resource"),
]


@pytest.mark.parametrize(("changes", "error"), TAMPERED_FORMS)
def test_tampered_consent_form_is_refused_without_a_code(client, web_client, user, changes, error):
    app, _ = web_client
    client.force_login(user)
    _, challenge = pkce_pair()
    page = client.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge))
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(AUTHORIZE_URL, {**form, **changes, "allow": "Authorize"})
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT_URI + "?")
    query = location_query(response)
    assert query["error"] == [error]
    assert "code" not in query
    assert not Grant.objects.exists()
