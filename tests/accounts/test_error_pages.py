"""Browsers on the end-user routes get plain HTML error pages; clients keep JSON (issue 14).

Each row: a way to provoke a status, asked for as a browser (``Accept: text/html``) and as a
client. The pages name no framework and show no trace; the headers that tell a caller what to do
next (``Retry-After``, ``Allow``) survive the page.
"""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from authserver import counters, notfound
from authserver.accounts.views import pages
from tests.factories import PASSWORD
from tests.helpers import API

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
FINGERPRINTS = ("Django", "Traceback", "DEBUG", "CSRF verification", "csrfmiddlewaretoken")


def assert_page(response, status: int, *words: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert f"Error {status}" in body and "<h1>" in body
    for word in (*words,):
        assert word in body
    for fingerprint in FINGERPRINTS:
        assert fingerprint not in body, fingerprint
    assert response["Cache-Control"] == "no-store"
    return body


@pytest.fixture
def login_limited(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login.account": ("1/300", "closed")}


def _login(http, **headers):
    return http.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, **headers)


def test_login_rate_limit_is_a_page_for_browsers_and_json_for_clients(client, user, login_limited):
    _login(client)
    page = _login(client, **BROWSER)
    assert_page(page, 429, "Too many attempts")
    assert int(page["Retry-After"]) >= 1 and "RateLimit" in page
    assert "Accept" in page["Vary"]
    machine = _login(client)
    assert machine.status_code == 429 and machine.json()["error"] == "rate_limited"
    assert int(machine["Retry-After"]) >= 1


def test_limiter_down_is_a_503_page_for_browsers(client, user, monkeypatch):
    def down(*args, **kwargs):
        raise counters.CountersUnavailable("store down")

    monkeypatch.setattr(counters.backend(), "consume", down)
    page = _login(client, **BROWSER)
    assert_page(page, 503, "Temporarily unavailable")
    assert page["Retry-After"] == "5"
    assert _login(client).json()["error"] == "temporarily_unavailable"


def test_unknown_page_and_unknown_api_path_are_the_one_uniform_404(client):
    # Issue 15: no page of its own, no JSON of its own: one answer for everything unknown (authserver.notfound).
    answers = [client.get("/no/such/page", **BROWSER), client.get("/no/such/page"),
               client.get(API + "no-such-thing", **BROWSER), client.get(API + "no-such-thing")]
    for answer in answers:
        assert answer.status_code == 404 and answer.content == notfound.BODY
        assert answer["Content-Type"] == "text/plain; charset=utf-8" and "Vary" not in answer


def test_method_not_allowed_is_a_page_with_allow_and_json_on_the_token_endpoint(client):
    page = client.put("/accounts/logout/", **BROWSER)
    assert_page(page, 405)
    assert page["Allow"] == "GET, HEAD, POST"
    bare = client.put("/accounts/logout/")
    assert bare.status_code == 405 and bare["Allow"] == "GET, HEAD, POST"
    token = client.get("/oauth/token", **BROWSER)
    assert token.status_code == 405 and token.json()["error"] == "invalid_request"


def test_csrf_failure_is_a_plain_403_page():
    http = HttpClient(enforce_csrf_checks=True)
    assert_page(http.post("/accounts/login/", {"username": "a", "password": "b"}, **BROWSER), 403, "Not allowed")


def test_bad_host_is_a_400_page_and_json_on_the_token_endpoint(client):
    assert_page(client.get("/", HTTP_HOST="evil.example", **BROWSER), 400, "Bad request")
    token = client.post("/oauth/token", HTTP_HOST="evil.example", **BROWSER)
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


def test_uncaught_error_is_a_plain_500_page(monkeypatch, settings):
    def boom(*args, **kwargs):
        raise RuntimeError("secret detail 1234")

    monkeypatch.setattr(pages, "render", boom)
    http = HttpClient(raise_request_exception=False)
    body = assert_page(http.get("/", **BROWSER), 500, "Something went wrong")
    assert "secret detail" not in body and "RuntimeError" not in body


def test_introspection_errors_stay_json_for_browsers(client):
    response = client.post("/oauth/introspect", {"token": "x"}, **BROWSER)
    assert response.status_code == 401 and response["Content-Type"].startswith("application/json")


def test_error_page_in_german(client):
    page = client.put("/accounts/logout/", HTTP_ACCEPT_LANGUAGE="de", **BROWSER)  # 405: a page (404s are uniform)
    assert "Nicht erlaubt" in page.content.decode() and '<html lang="de">' in page.content.decode()
