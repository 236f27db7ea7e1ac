"""A Content-Security-Policy on every HTML page we serve (issue 13, item 6): the whole admin as a
superuser sees it (every model's list, add form, change form, history and delete page, and every
extra admin view that takes no argument), login and logged out, the consent page and its error
page, and Django's 400/403/500 pages (a 404 is the uniform one: authserver.notfound, with its
own CSP). JSON answers carry none (nothing renders them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from authserver.anomaly.models import Anomaly, Signal
from authserver.audit.services import audit_record
from authserver.csp import form_target_source
from keys.services import api_key_create
from tests.factories import REDIRECT_URI
from tests.helpers import API, AUTHORIZE_URL, authorize_params, pkce_pair, staff_login

pytestmark = pytest.mark.django_db

REQUIRED = ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
            "base-uri 'none'", "form-action 'self'")


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_policy(response: Any, where: str) -> None:
    assert response["Content-Type"].startswith("text/html"), where
    policy = response.get("Content-Security-Policy")
    assert policy, f"{where} ({response.status_code}) has no Content-Security-Policy"
    for required in REQUIRED:
        assert required in policy, (where, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (where, policy)


def renders(response: Any) -> bool:
    """A page a browser would render (a redirect's empty body is none)."""
    return response.get("Content-Type", "").startswith("text/html") and bool(response.content)


@pytest.fixture
def superuser_http(db: Any) -> Client:
    http = Client(raise_request_exception=False)
    staff_login(http, get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


@pytest.fixture
def some_of_everything(web_client: Any, user: Any) -> None:
    app, _ = web_client
    api_key_create(client=app, name="walked")
    Anomaly(signal=Signal.AUTH_FAILURES, subject="net:abc", series="authfail:abc",
            minute=datetime.now(UTC).replace(second=0, microsecond=0), evidence={"count": 50},
            personal={"address": "203.0.113.9"}).save()
    audit_record(event="test.walked", subject="thing:1", details={}, personal={"ip": "192.0.2.1"})


def _argless_admin_urls() -> list[str]:
    """Every admin URL that takes no argument (index, lists, add forms, dashboards, ...)."""
    found: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and "<" not in str(pattern.pattern):
                found.append(prefix + str(pattern.pattern))

    walk(admin.site.get_urls(), "")
    return sorted({"/" + settings.ADMIN_PATH + "/" + p.lstrip("^").rstrip("$") for p in found})


def test_every_admin_page_has_the_policy(superuser_http: Client, some_of_everything: None) -> None:
    seen = 0
    for url in _argless_admin_urls():
        if url.endswith("/logout/"):
            continue  # a POST; checked below with the logged-out page
        response = superuser_http.get(url)
        if renders(response):
            assert_policy(response, url)
            seen += 1
    # And each object's change, history and delete pages.
    for model, model_admin in admin.site._registry.items():
        obj = model_admin.get_queryset(_request(superuser_http)).first()
        if obj is None:
            continue
        info = model._meta.app_label, model._meta.model_name
        for view in ("change", "history", "delete"):
            response = superuser_http.get(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk]))
            if renders(response):
                assert_policy(response, f"{info} {view}")
                seen += 1
    assert seen > 40  # the walk really walked


def _request(http: Client) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="root")
    return request


def test_login_logged_out_and_error_pages_have_the_policy(user: Any) -> None:
    http = Client(enforce_csrf_checks=True, raise_request_exception=False)
    assert_policy(http.get("/accounts/login/"), "login")
    unknown = http.get("/no/such/page")  # the uniform 404 (authserver.notfound): plain text, and its own policy
    assert unknown.status_code == 404
    assert unknown["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    forbidden = http.post("/accounts/login/", {"username": "x", "password": "y"})  # no CSRF token
    assert forbidden.status_code == 403
    assert_policy(forbidden, "403")
    assert_policy(http.get(f"/{settings.ADMIN_PATH}/login/", follow=True), "admin login")
    logged_out = Client(raise_request_exception=False)
    logged_out.force_login(user)
    response = logged_out.post("/accounts/logout/")
    assert response.status_code == 200
    assert_policy(response, "logged out")


def test_a_500_page_has_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from authserver.accounts.views import LoginView

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an uncaught error")

    monkeypatch.setattr(LoginView, "get", boom)
    response = Client(raise_request_exception=False).get("/accounts/login/")
    assert response.status_code == 500
    assert_policy(response, "500")


def test_the_consent_page_may_post_only_here_and_to_its_clients_redirect_origin(web_client: Any, user: Any) -> None:
    app, _ = web_client
    http = Client()
    http.force_login(user)
    _, challenge = pkce_pair()
    page = http.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge))
    assert page.status_code == 200
    assert_policy(page, "consent")
    assert directives(page)["form-action"] == ["'self'", form_target_source(REDIRECT_URI)]
    assert form_target_source(REDIRECT_URI) == "https://app.example.test"


def test_the_consent_error_page_has_the_plain_policy(web_client: Any, user: Any) -> None:
    app, _ = web_client
    http = Client(raise_request_exception=False)
    http.force_login(user)
    _, challenge = pkce_pair()
    page = http.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge))
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = http.post(AUTHORIZE_URL, {**form, "client_id": "no-such-client", "allow": "Authorize"})
    assert response.status_code == 400
    assert_policy(response, "consent error")
    assert directives(response)["form-action"] == ["'self'"]  # nowhere to redirect to


@pytest.mark.parametrize(("uri", "source"), [
    ("https://app.example.test/cb?x=1", "https://app.example.test"),
    ("http://127.0.0.1:49152/cb", "http://127.0.0.1:49152"),
    ("com.example.app:/oauth/cb", "com.example.app:"),
    ("https://evil.test/a;script-src *", None),
    ("https://evil.test/a'b", None),
    ("/relative", None),
])
def test_redirect_sources(uri: str, source: str | None) -> None:
    assert form_target_source(uri) == source


def test_json_answers_carry_no_policy(client: Client) -> None:
    for response in (client.get("/.well-known/oauth-authorization-server"), client.post("/oauth/token", {}),
                     client.get(API + "keys")):
        assert response["Content-Type"].startswith("application/json")
        assert "Content-Security-Policy" not in response


def test_the_login_page_before_an_authorization_admits_its_clients_redirect_origin(web_client: Any) -> None:
    """Login POST → 302 /oauth/authorize → 302 to the client when the consent is remembered: the
    login page's form-action must admit that last hop (tests/browser/test_csp_browser.py)."""
    app, _ = web_client
    _, challenge = pkce_pair()
    from urllib.parse import urlencode

    authorize = f"{AUTHORIZE_URL}?{urlencode(authorize_params(app, challenge=challenge))}"
    page = Client().get("/accounts/login/", {"next": authorize})
    assert_policy(page, "login before an authorization")
    assert directives(page)["form-action"] == ["'self'", "https://app.example.test"]
    for next_url in (
        authorize.replace("app.example.test", "evil.example"),  # not a registered redirect URI
        authorize.replace(app.client_id, "no-such-client"),
        "/accounts/login/", "https://evil.example/oauth/authorize?client_id=" + app.client_id,
    ):
        page = Client().get("/accounts/login/", {"next": next_url})
        assert directives(page)["form-action"] == ["'self'"], next_url
