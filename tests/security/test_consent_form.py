"""The consent form (POST /oauth/authorize) with bad input (issue 12, item 8).

Its hidden fields carry the authorization request between the consent page and the answer; a form
that comes back unusable gets a 400 page (its redirect URI is unverified: no redirect, RFC 6749
§4.1.2.1) and never a 5xx; a method the endpoint does not have gets 405 with Allow, even with a
valid CSRF token.
"""

from __future__ import annotations

import pytest
from django.test import Client

from authserver.audit.models import AuditEvent
from authserver.oauth.models import Grant
from tests.helpers import AUTHORIZE_URL, authorize_params, pkce_pair

pytestmark = pytest.mark.django_db


def _consent_form(client, app):
    """The consent page's hidden fields, as the browser would send them back with Allow."""
    _, challenge = pkce_pair()
    page = client.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge))
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    return {**form, "allow": "Authorize"}


# Each row: the fields changed in an otherwise valid consent form.
BAD_FORMS = [
    pytest.param({"state": "x\x00y"}, id="nul-in-state"),
    pytest.param({"redirect_uri": ""}, id="empty-redirect-uri"),
    pytest.param({"client_id": ""}, id="empty-client-id"),
    pytest.param({"code_challenge": "a\x00" * 21 + "a"}, id="nul-in-code-challenge"),
    pytest.param({"scope": "ai.infer\x00"}, id="nul-in-scope"),
    pytest.param({"response_type": ""}, id="empty-response-type"),
    pytest.param({"client_id": "no-such-client"}, id="unknown-client-id"),
    pytest.param({"client_id": "x" * 5000}, id="huge-client-id"),
]


@pytest.mark.parametrize("changes", BAD_FORMS)
def test_unusable_consent_form_is_a_400_page(web_client, user, changes):
    app, _ = web_client
    client = Client(raise_request_exception=False)
    client.force_login(user)
    form = {**_consent_form(client, app), **changes}
    response = client.post(AUTHORIZE_URL, form)
    assert response.status_code == 400
    assert "Location" not in response
    assert b"You have not been redirected" in response.content
    assert b"invalid_request" in response.content
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.filter(event__startswith="consent.").exists()


def test_consent_form_with_a_redirect_uri_not_registered_is_a_400_page(web_client, user):
    app, _ = web_client
    client = Client(raise_request_exception=False)
    client.force_login(user)
    form = {**_consent_form(client, app), "redirect_uri": "https://attacker.example/cb"}
    response = client.post(AUTHORIZE_URL, form)
    assert response.status_code == 400
    assert "Location" not in response
    assert not Grant.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_with_a_valid_csrf_token_are_405(web_client, user, method):
    app, _ = web_client
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    form = _consent_form(client, app)  # the page set the CSRF cookie; the form carries its token
    form["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = getattr(client, method)(AUTHORIZE_URL, form, content_type="application/x-www-form-urlencoded",
                                        HTTP_X_CSRFTOKEN=form["csrfmiddlewaretoken"])
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"
    assert not Grant.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_without_csrf_token_are_405_not_403(user, method):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    response = getattr(client, method)(AUTHORIZE_URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"


def test_post_still_needs_the_csrf_token(web_client, user):
    app, _ = web_client
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    form = _consent_form(client, app)
    response = client.post(AUTHORIZE_URL, form)  # no csrfmiddlewaretoken
    assert response.status_code == 403
    assert not Grant.objects.exists()


def test_valid_consent_form_still_issues_a_code(web_client, user):
    app, _ = web_client
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    form = _consent_form(client, app)
    form["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = client.post(AUTHORIZE_URL, form)
    assert response.status_code == 302
    assert "code=" in response["Location"]
    assert AuditEvent.objects.filter(event="consent.granted").count() == 1
