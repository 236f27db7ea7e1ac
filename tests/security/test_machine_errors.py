"""Machine endpoints answer JSON error objects throughout (issue 12, item 11).

The token, introspection, revocation and metadata endpoints and the management API answer every
error as an RFC 6749 §5.2 error object with ``Cache-Control: no-store``, including Django's own
400/403/404/413/500 paths; a method an endpoint does not take is 405 with ``Allow`` (RFC 9110
§15.5.6) before CSRF is looked at; OPTIONS is such a method on every endpoint alike (as on the
management API: the metadata document and the OpenAPI schema describe the endpoints).
Checked through the Django test client (the full middleware stack) and through the WSGI
dispatcher (the lean machine handler production routes these paths to).
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from authserver import handlers, notfound
from authserver.oauth import views as oauth_views
from keys.api import KEYS_READ, KEYS_WRITE
from tests.bench.test_machine_handler import wsgi_call
from tests.helpers import API, AUTHORIZE_URL, INTROSPECT_URL, REVOKE_URL, TOKEN_URL
from tests.keys.conftest import api_token

pytestmark = pytest.mark.django_db

METADATA_URL = "/.well-known/oauth-authorization-server"

# Each row: endpoint, a method it does not take, the Allow it must name.
WRONG_METHODS = [
    *[pytest.param(url, method, "POST", id=f"{method}-{url}")
      for url in (TOKEN_URL, INTROSPECT_URL, REVOKE_URL) for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS")],
    *[pytest.param(METADATA_URL, method, "GET, HEAD", id=f"{method}-metadata")
      for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")],
]


def _assert_json_error(response, status, error="invalid_request"):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert isinstance(body.get("error_description"), str)


@pytest.fixture
def csrf_client():
    """A browser-like client: CSRF enforced, exceptions answered as the server would."""
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


@pytest.mark.parametrize(("url", "method", "allow"), WRONG_METHODS)
def test_wrong_method_is_a_json_405_with_allow(csrf_client, url, method, allow):
    response = csrf_client.generic(method, url, "token=at_x&grant_type=client_credentials",
                                   content_type="application/x-www-form-urlencoded")
    _assert_json_error(response, 405)
    assert response["Allow"] == allow


def test_options_on_authorize_is_405_like_everywhere(csrf_client):
    response = csrf_client.options(AUTHORIZE_URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"


def test_options_on_the_management_api_is_405_too(csrf_client):
    app, token = api_token(csrf_client, [KEYS_READ, KEYS_WRITE])
    response = csrf_client.options(API + "keys", HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_json_error(response, 405, "method_not_allowed")


def test_metadata_still_answers_get_and_head(client):
    assert client.get(METADATA_URL).json()["issuer"]
    assert client.head(METADATA_URL).status_code == 200


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
def test_body_over_the_upload_limit_is_a_json_413(csrf_client, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = csrf_client.post(url, {"grant_type": "client_credentials", "token": "a" * 20_000})
    _assert_json_error(response, 413)


@pytest.mark.parametrize("url", [TOKEN_URL, REVOKE_URL])
def test_too_many_fields_is_a_json_400(csrf_client, url):
    response = csrf_client.post(url, {f"f{i}": "1" for i in range(1_100)})  # DATA_UPLOAD_MAX_NUMBER_FIELDS
    _assert_json_error(response, 400)


def test_management_api_body_over_the_upload_limit_is_a_json_413(csrf_client, settings):
    app, token = api_token(csrf_client, [KEYS_READ, KEYS_WRITE])
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = csrf_client.post(API + "keys", json.dumps({"name": "a" * 20_000}), content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_json_error(response, 413)


def test_unknown_management_api_path_is_the_uniform_404(csrf_client):
    response = csrf_client.get(API + "no-such-thing")
    assert response.status_code == 404 and response.content == notfound.BODY  # issue 15: one 404 for all


@pytest.mark.parametrize("url", [TOKEN_URL, METADATA_URL])
def test_disallowed_host_is_a_json_400(csrf_client, url):
    _assert_json_error(csrf_client.get(url, HTTP_HOST="attacker.example"), 400)


def test_uncaught_error_is_a_json_500(csrf_client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(oauth_views.TokenView, "post", explode)
    _assert_json_error(csrf_client.post(TOKEN_URL, {"grant_type": "client_credentials"}), 500, "server_error")


def test_permission_denied_is_a_json_403(csrf_client, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionDenied

    monkeypatch.setattr(oauth_views.RevokeTokenView, "post", refuse)
    _assert_json_error(csrf_client.post(REVOKE_URL, {"token": "x"}), 403, "access_denied")


def test_browser_pages_keep_html_errors(csrf_client):
    response = csrf_client.put("/accounts/logout/", HTTP_ACCEPT="text/html")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")


# -- The production routing: the lean machine handler (authserver.handlers.Dispatcher) -----------

@pytest.fixture(scope="module")
def dispatcher():
    return handlers.Dispatcher()


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
def test_machine_handler_wrong_method_is_a_json_405(dispatcher, url):
    status, headers, body = wsgi_call(dispatcher, url, method="GET")
    assert status == 405
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert headers["allow"] == "POST"


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
def test_machine_handler_options_is_a_json_405(dispatcher, url):
    status, headers, body = wsgi_call(dispatcher, url, method="OPTIONS")
    assert (status, headers["allow"], headers["content-type"]) == (405, "POST", "application/json")


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
def test_machine_handler_oversized_body_is_a_json_413(dispatcher, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    status, headers, body = wsgi_call(dispatcher, url, body="grant_type=client_credentials&token=" + "a" * 20_000)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
