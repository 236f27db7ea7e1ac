"""The Content-Security-Policy in a real browser (issue 13, item 6): the admin's pages (with their
widgets, the reveal-once pages' Copy button, the charts) and the login and consent flow through
the redirect to the client raise no CSP violation, and still look and work as before.

Violations are collected twice over: Chromium's console messages that mention the policy, and a
``securitypolicyviolation`` listener installed in every document before its own scripts run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django_celery_beat.models import CrontabSchedule

from clients.services import client_register, scope_create
from keys.services import api_key_create
from tests.browser.conftest import admin_login, screenshot, seed_usage
from tests.browser.test_admin_audit_anomaly import admin_url, seed_spike
from tests.browser.test_consent import CALLBACK, submit_login
from tests.conftest import pkce_pair
from tests.factories import PASSWORD, RS_AUDIENCE, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.effectiveDirective + " blocked " + e.blockedURI + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


class Violations:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(LISTENER)
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def check(self, where: str) -> None:
        """No violation so far, in the console or in this document."""
        page_side = self.page.evaluate("window.__csp || []")
        assert not self.console and not page_side, f"CSP violations on {where}: {self.console} {page_side}"


def test_admin_pages_raise_no_violation(page: Any, live_server: Any, superuser: Any, fake_app: Any) -> None:
    violations = Violations(page)
    scope_create(name="ai.infer", description="Run inference")
    anomaly, _series = seed_spike()
    customer = anomaly.key.client
    key, _ = api_key_create(client=customer, name="charted", audiences=[RS_AUDIENCE])
    seed_usage(key)
    crontab = CrontabSchedule.objects.create(minute="0", hour="3")
    admin_login(page, superuser)

    for path, shot in [
        ("", "csp_admin_index"),
        ("clients/client/", "csp_admin_client_list"),
        (f"clients/client/{customer.pk}/change/", "csp_admin_client_change"),
        ("keys/apikey/", "csp_admin_key_list"),
        (f"keys/apikey/{key.pk}/change/", "csp_admin_key_change"),
        (f"keys/apikey/{key.pk}/usage/", "csp_admin_key_usage"),
        ("anomaly/anomaly/dashboard/", "csp_admin_anomaly_dashboard"),
        (f"anomaly/anomaly/{anomaly.pk}/change/", "csp_admin_anomaly_change"),
        ("audit/auditevent/", "csp_admin_audit_list"),
        ("django_celery_beat/periodictask/add/", "csp_admin_periodic_task_add"),  # date/time widgets
    ]:
        page.goto(admin_url(path))
        page.wait_for_load_state("load")
        assert page.locator("#site-name").count() == 1, path
        violations.check(path)
        screenshot(page, shot)
    # The admin's own CSS really applied (a policy that blocked it would leave unstyled HTML).
    header_bg = page.evaluate("getComputedStyle(document.getElementById('header')).backgroundColor")
    assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), header_bg
    page.goto(admin_url("anomaly/anomaly/dashboard/"))
    chart_fill = page.evaluate("getComputedStyle(document.querySelector('svg.as-anomaly-chart rect.bar')).fill")
    assert chart_fill and chart_fill != "rgb(0, 0, 0)", chart_fill  # styled by anomaly.css, not the SVG default

    # The date widgets' calendar and clock (admin JavaScript) still open.
    page.goto(admin_url("django_celery_beat/periodictask/add/"))
    page.click("a#calendarlink0")
    assert page.locator("#calendarbox0").is_visible()
    violations.check("calendar widget")
    # django-celery-beat's crontab reading, from our file instead of its inline script.
    page.select_option("#id_crontab", str(crontab.pk))
    assert "Translation: At 03:00" in page.inner_text(".field-crontab .help")
    violations.check("crontab reading")

    # A client added: the reveal-once page and its Copy button (static/authserver/credential-once.js).
    page.goto(admin_url("clients/client/add/"))
    page.fill("#id_name", "Web app")
    page.check("#id_client_type_0")
    page.check("input[name=grant_types][value=authorization_code]")
    page.fill("#id_redirect_uris", CALLBACK)
    page.get_by_label("ai.infer").check()
    page.fill("#id_other_audiences", RS_AUDIENCE)  # no resource server registered here: the override
    page.check("#id_allow_unregistered_audience")
    violations.check("client add page")
    screenshot(page, "csp_admin_client_add")
    page.click("input[name=_save]")
    page.wait_for_selector("#client-secret")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-secret")
    # A locator wait, not wait_for_function("..."): Playwright polls a string predicate with eval,
    # which the page's own CSP (no 'unsafe-eval') rightly refuses.
    page.locator("#copy-hint", has_text="Copied").wait_for()
    violations.check("client secret shown once")
    screenshot(page, "csp_admin_client_secret_once")


def test_login_consent_and_redirect_raise_no_violation(page: Any, live_server: Any, fake_app: Any) -> None:
    violations = Violations(page)
    UserFactory(username="alice")
    scope_create(name="ai.infer", description="Run inference on your behalf")
    app, _ = client_register(
        name="Notebook", client_type="confidential", grant_types=["authorization_code"], redirect_uris=[CALLBACK],
        scopes=["ai.infer"], audiences=[RS_AUDIENCE], allow_unregistered_audience=True,
    )
    fake_app.hits.clear()
    _, challenge = pkce_pair()
    query = urlencode({
        "response_type": "code", "client_id": app.client_id, "redirect_uri": CALLBACK, "scope": "ai.infer",
        "state": "st-1", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    page.goto(f"/oauth/authorize?{query}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    violations.check("login")
    screenshot(page, "csp_login")
    submit_login(page)
    page.wait_for_selector("#authorizationForm")
    violations.check("consent")
    screenshot(page, "csp_consent")
    # The consent form's POST answers 302 to the client: form-action governs that redirect too.
    with page.expect_navigation(url="https://app.example.test/**"):
        page.click("button[name=allow]")
    assert fake_app.hits == [page.url]
    assert urlsplit(page.url).netloc == "app.example.test"
    violations.check("the redirect to the client")
    screenshot(page, "csp_consent_redirected")


def test_a_remembered_consent_redirects_straight_from_the_login_form(page: Any, live_server: Any,
                                                                    fake_app: Any) -> None:
    """Login POST → 302 /oauth/authorize → 302 to the client (consent remembered): the login page's
    form-action must admit that last hop too, or the browser stops on the login page."""
    violations = Violations(page)
    UserFactory(username="carol")
    scope_create(name="ai.infer", description="Run inference on your behalf")
    app, secret = client_register(
        name="Notebook", client_type="confidential", grant_types=["authorization_code"], redirect_uris=[CALLBACK],
        scopes=["ai.infer"], audiences=[RS_AUDIENCE], allow_unregistered_audience=True, remember_consent=True,
    )
    verifier, challenge = pkce_pair()
    url = "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": app.client_id, "redirect_uri": CALLBACK, "scope": "ai.infer",
        "state": "st-2", "code_challenge": challenge, "code_challenge_method": "S256",
    })

    page.goto(url)
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    submit_login(page)
    page.wait_for_selector("#authorizationForm")
    with page.expect_navigation(url="https://app.example.test/**"):
        page.click("button[name=allow]")
    # A live token for these scopes is what lets the next authorization skip the consent page.
    code = parse_qs(urlsplit(page.url).query)["code"][0]
    token = requests.post(f"{live_server.url}/oauth/token", auth=(app.client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier})
    assert token.status_code == 200, token.text
    page.context.clear_cookies()  # signed out: the next authorization starts at the login page again
    fake_app.hits.clear()

    page.goto(url)
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation(url="https://app.example.test/**"):
        page.click("button[type=submit]")
    assert fake_app.hits == [page.url]
    violations.check("login straight to the client")
    screenshot(page, "csp_login_remembered_consent_redirected")
