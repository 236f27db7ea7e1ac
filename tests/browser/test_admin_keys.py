"""The API-key admin: issue (key shown once), rotate, suspend, resume, revoke, usage chart, compromise response.

The browser tests drive headless Chromium; the ``http_*`` tests at the end check permissions, CSRF
and methods through Django's test client and are not marked ``browser``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from authserver import counters, credentials, revocation
from keys.models import ApiKey, ApiKeyStatus, ApiKeyUsage, CompromiseResponse
from keys.services import api_key_create, api_key_suspend
from keys.verification import api_key_verify
from tests.browser.conftest import admin_login, screenshot
from tests.factories import RS_AUDIENCE, ScopeFactory, make_client

browser = pytest.mark.browser
live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)

OTHER_AUDIENCE = "https://embeddings.example.test"
CALLER_IP = "203.0.113.9"


@pytest.fixture(autouse=True)
def _fresh_counters(settings: Any, tmp_path: Any) -> Any:
    """Empty verification caches and a private usage-counter store for each test."""
    revocation.clear_caches()
    if not settings.REDIS_URL:
        settings.DATA_DIR = tmp_path
    counters.reset_for_tests()
    revocation.reset_for_tests()
    yield
    counters.reset_for_tests()
    revocation.reset_for_tests()


@pytest.fixture
def customer(transactional_db: Any) -> Any:
    ScopeFactory(name="ai.admin", description="Manage models")  # exists, but this client may not use it
    client, _ = make_client(
        name="Acme inference", scopes=["ai.infer", "ai.embed"], audiences=[RS_AUDIENCE, OTHER_AUDIENCE]
    )
    return client


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def key_url(key: ApiKey, view: str = "change") -> str:
    return admin_url(f"keys/apikey/{key.pk}/{view}/")


def active(plaintext: str, audience: str = RS_AUDIENCE, ip: str | None = CALLER_IP) -> bool:
    return api_key_verify(key=plaintext, audience=audience, client_ip=ip)["active"] is True


def seed_usage(key: ApiKey, *, now: datetime | None = None) -> int:
    """Thirty days of plausible traffic: a daily rhythm, busier on weekdays, a quiet gap, a spike."""
    now = (now or timezone.now()).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rows, total = [], 0
    for h in range(30 * 24):
        hour = now - timedelta(hours=h)
        if 30 <= h < 38:  # an outage on the client's side: no traffic at all (gap filled with zeros)
            continue
        daily = 0.55 + 0.45 * math.sin((hour.hour - 8) / 24 * 2 * math.pi)
        weekday = 1.0 if hour.weekday() < 5 else 0.45
        requests = int(40 + 260 * daily * weekday + (h * 37 % 23))
        if h == 5:
            requests *= 3  # a spike a few hours ago
        rows.append(ApiKeyUsage(key=key, hour=hour, requests=requests))
        total += requests
    ApiKeyUsage.objects.bulk_create(rows)
    ApiKey.objects.filter(pk=key.pk).update(
        uses=total, last_used=timezone.now() - timedelta(minutes=3), last_used_ip=CALLER_IP
    )
    return total


def assert_nowhere(page: Any, paths: list[str], *values: str) -> None:
    for path in paths:
        page.goto(path)
        html = page.content()
        for value in values:
            assert value not in html, f"{value[:6]}… found on {path}"


# -- browser ------------------------------------------------------------------------------------


@browser
@live_db
def test_issue_key_shows_it_once(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    # Other keys, so the list has something to compare with.
    older, _ = api_key_create(
        client=customer,
        name="batch jobs",
        scopes=["ai.embed"],
        audiences=[OTHER_AUDIENCE],
        expires_in=timedelta(days=5),
    )
    seed_usage(older)
    paused, _ = api_key_create(client=customer, name="staging", rate_limit=(10, 1), quota=50_000)
    api_key_suspend(key=paused)
    other, _ = make_client(name="Beta analytics", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    api_key_create(client=other, name="dashboards", expires_in=timedelta(days=200))

    admin_login(page, superuser)
    page.goto(admin_url("keys/apikey/"))
    page.click(".object-tools a.addlink")
    page.wait_for_selector("#apikey_form")
    page.select_option("#id_client", label=f"Acme inference ({customer.client_id})")
    page.fill("#id_name", "billing-service production")
    page.get_by_label("ai.infer").check()
    page.fill("#id_audiences", RS_AUDIENCE)
    page.fill("#id_allowed_ips", "203.0.113.0/24\n10.0.0.1/8")  # the second has host bits set: a typo
    page.fill("#id_expires_in", "30d")
    page.fill("#id_rate_limit", "100/m")
    page.fill("#id_quota", "1000000")
    screenshot(page, "admin_key_add")
    page.click("input[name=_save]")

    errors = page.locator(".field-allowed_ips .errorlist")
    assert "invalid CIDR '10.0.0.1/8'" in errors.inner_text()
    assert page.locator("#api-key").count() == 0
    assert not ApiKey.objects.filter(name="billing-service production").exists()
    assert page.input_value("#id_allowed_ips") == "203.0.113.0/24\n10.0.0.1/8"  # what was typed is kept
    screenshot(page, "admin_key_add_error")

    # A scope the client is not allowed: the service refuses, the error lands on the scopes.
    page.fill("#id_allowed_ips", "203.0.113.0/24\n2001:db8::/32")
    page.get_by_label("ai.admin").check()
    page.click("input[name=_save]")
    assert "not allowed for this client: ai.admin" in page.inner_text(".field-scopes .errorlist")
    assert not ApiKey.objects.filter(name="billing-service production").exists()

    page.get_by_label("ai.admin").uncheck()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/add/")) as posted:
        page.click("input[name=_save]")
    response = posted.value
    assert response.status == 200
    assert "no-store" in response.headers["cache-control"]

    plaintext = page.input_value("#api-key")
    assert credentials.is_well_formed(plaintext, "ak"), plaintext
    key = ApiKey.objects.get(name="billing-service production")
    assert page.inner_text("#key-hint") == key.hint == credentials.hint(plaintext)
    assert key.digest == credentials.digest(plaintext) and plaintext not in key.digest
    assert key.scope == "ai.infer" and key.audiences == [RS_AUDIENCE]
    assert key.allowed_ips == ["203.0.113.0/24", "2001:db8::/32"]
    assert (key.rate_limit, key.rate_limit_period, key.quota) == (100, 60, 1_000_000)
    assert timedelta(days=29, hours=23) < key.expires - key.created <= timedelta(days=30)
    assert key.created_by == superuser
    assert plaintext not in page.url
    screenshot(page, "admin_key_shown_once")

    assert active(plaintext)
    assert not active(plaintext, audience=OTHER_AUDIENCE)  # not one of this key's audiences
    assert not active(plaintext, ip="198.51.100.1")  # outside the allowlist

    page.click("#to-key")
    page.wait_for_selector("#apikey_form")
    assert page.url.endswith(key_url(key))
    assert page.locator("input[name=_save]").count() == 0  # the policy is read-only
    assert "cannot be edited" in page.inner_text("#apikey_form")

    # The plaintext (and the digest) are on no page: the list, the change page, the usage page, history.
    pages = [
        admin_url("keys/apikey/"),
        key_url(key),
        key_url(key, "usage"),
        key_url(key, "history"),
        admin_url(f"keys/apikey/?q={quote(key.hint[-4:])}"),
    ]
    assert_nowhere(page, pages, plaintext, key.digest)

    page.goto(admin_url("keys/apikey/"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 4
    listing = page.inner_text("#result_list")
    assert "billing-service production" in listing and key.hint in listing
    assert "Suspended" in listing and "Acme inference" in listing and "Beta analytics" in listing
    assert "digest" not in page.content()
    screenshot(page, "admin_keys_list")

    # Filters: by expiry and by client.
    page.goto(admin_url("keys/apikey/?expiry=soon"))
    assert page.locator("#result_list tbody tr").count() == 1
    assert "batch jobs" in page.inner_text("#result_list")
    page.goto(admin_url(f"keys/apikey/?client__id__exact={other.pk}"))
    assert page.locator("#result_list tbody tr").count() == 1
    assert "dashboards" in page.inner_text("#result_list")
    # Search by client ID.
    page.goto(admin_url(f"keys/apikey/?q={other.client_id}"))
    assert page.locator("#result_list tbody tr").count() == 1


@browser
@live_db
def test_rotate_suspend_resume_revoke(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    key, old_plaintext = api_key_create(
        client=customer, name="mobile backend", audiences=[RS_AUDIENCE], expires_in=timedelta(days=60)
    )
    assert active(old_plaintext)

    admin_login(page, superuser)
    page.goto(key_url(key))
    page.click("#key-rotate")
    page.wait_for_selector("#rotate-form")
    assert page.input_value("#id_grace") == "24h"
    screenshot(page, "admin_key_rotate")

    page.fill("#id_grace", "40d")
    page.click("#rotate-submit")
    assert "at most 30 days" in page.inner_text("#rotate-form .errorlist")
    assert not ApiKey.objects.filter(rotated_from=key).exists()

    page.fill("#id_grace", "2h")
    with page.expect_response(lambda r: r.request.method == "POST" and "/rotate/" in r.url) as posted:
        page.click("#rotate-submit")
    assert "no-store" in posted.value.headers["cache-control"]
    successor_plaintext = page.input_value("#api-key")
    assert credentials.is_well_formed(successor_plaintext, "ak")
    assert successor_plaintext != old_plaintext
    assert key.hint in page.inner_text("#previous-key")
    screenshot(page, "admin_key_rotated")

    successor = ApiKey.objects.get(rotated_from=key)
    key.refresh_from_db()
    assert 7100 < (key.grace_ends - timezone.now()).total_seconds() <= 7200
    assert successor.audiences == key.audiences and successor.scope == key.scope
    assert active(successor_plaintext) and active(old_plaintext)  # both work during the grace period

    page.click("#to-key")
    page.wait_for_selector("#apikey_form")
    assert page.url.endswith(key_url(successor))
    assert_nowhere(
        page,
        [key_url(successor), key_url(key), admin_url("keys/apikey/"), key_url(successor, "usage")],
        successor_plaintext,
        old_plaintext,
    )
    page.goto(key_url(key))
    assert "Rotated: works until" in page.inner_text(".field-status_display")
    assert page.locator("#key-rotate").count() == 0  # a key is rotated once

    page.goto(key_url(successor))
    page.click("#key-suspend")
    page.wait_for_selector(".messagelist .success")
    assert "suspended" in page.inner_text(".messagelist")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.SUSPENDED
    assert not active(successor_plaintext)
    assert page.locator("#key-suspend").count() == 0
    screenshot(page, "admin_key_suspended")

    page.click("#key-resume")
    page.wait_for_selector(".messagelist .success")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE
    assert active(successor_plaintext)

    page.click("#key-revoke")
    page.wait_for_selector("#revoke-form")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE  # the GET changed nothing
    screenshot(page, "admin_key_revoke")
    page.click("#revoke-submit")
    page.wait_for_selector(".messagelist .success")
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.REVOKED
    assert not active(successor_plaintext)
    assert "Revoked" in page.inner_text(".field-status_display")
    assert page.locator("#key-revoke, #key-suspend, #key-rotate").count() == 0
    assert active(old_plaintext)  # the predecessor is still inside its grace period


@browser
@live_db
def test_usage_chart(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    key, plaintext = api_key_create(
        client=customer,
        name="chat frontend",
        audiences=[RS_AUDIENCE],
        allowed_ips=["203.0.113.0/24"],
        rate_limit=(600, 60),
        quota=5_000_000,
    )
    seed_usage(key)
    this_hour = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    usage = ApiKeyUsage.objects.filter(key=key)
    last_48h = sum(usage.filter(hour__gt=this_hour - timedelta(hours=48)).values_list("requests", flat=True))
    first_day = this_hour.replace(hour=0) - timedelta(days=29)
    last_30d = sum(usage.filter(hour__gte=first_day).values_list("requests", flat=True))

    admin_login(page, superuser)
    page.goto(key_url(key))
    page.wait_for_selector("#key-usage svg.as-chart")
    hourly = page.locator("#usage-hourly")
    daily = page.locator("#usage-daily")
    assert hourly.locator("g.slot").count() == 48
    assert daily.locator("g.slot").count() == 30
    assert hourly.locator(".as-total-value").inner_text() == f"{last_48h:,}"
    assert daily.locator(".as-total-value").inner_text() == f"{last_30d:,}"
    # The outage hours are drawn as zero-height bars, not skipped.
    assert hourly.locator('g.slot[data-requests="0"]').count() == 8
    assert "Requests per hour" in hourly.inner_text() and "UTC" in hourly.inner_text()
    assert page.locator("#usage-hourly svg text.ylabel").count() >= 3  # y axis labels
    assert page.locator("#usage-daily svg text.xlabel").count() == 6  # every fifth day
    assert CALLER_IP in page.inner_text("#usage-last-used")
    page.locator("#key-usage").scroll_into_view_if_needed()
    screenshot(page, "admin_key_change_usage")

    page.click("#key-usage-link")
    page.wait_for_selector("#usage-table-daily")
    assert page.locator("#usage-table-daily tbody tr").count() == 30
    screenshot(page, "admin_key_usage")

    # A key that was never used gets empty charts, not an error.
    fresh, _ = api_key_create(client=customer, name="unused")
    page.goto(key_url(fresh))
    assert "No requests recorded" in page.inner_text("#usage-hourly")
    assert page.inner_text("#usage-last-used") == "never"
    assert plaintext not in page.content()


@browser
@live_db
def test_compromise_response_from_the_client_filter(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    keys = [api_key_create(client=customer, name=f"service {n}", audiences=[RS_AUDIENCE]) for n in range(3)]
    api_key_suspend(key=keys[2][0])
    bystander, bystander_plaintext = api_key_create(
        client=make_client(name="Unrelated", audiences=[RS_AUDIENCE])[0], name="keep me", audiences=[RS_AUDIENCE]
    )
    assert all(active(p) for _, p in keys[:2]) and active(bystander_plaintext)

    admin_login(page, superuser)
    page.goto(admin_url(f"keys/apikey/?client__id__exact={customer.pk}"))
    assert page.locator("#result_list tbody tr").count() == 3
    page.click("#client-compromise")
    page.wait_for_selector("#compromise-form")
    assert page.inner_text(f"#compromise-client-{customer.pk} .count-api-keys") == "3"
    assert not CompromiseResponse.objects.exists()  # the GET changed nothing
    screenshot(page, "admin_key_compromise")
    page.click("#compromise-submit")
    page.wait_for_selector(".messagelist .success")
    assert "Compromise response started for Acme inference" in page.inner_text(".messagelist")

    assert not any(active(p) for _, p in keys)
    assert active(bystander_plaintext)
    response = CompromiseResponse.objects.get()
    assert response.client == customer and response.requested_by == superuser.get_username()
    statuses = page.locator("#result_list td.field-status_list_display").all_inner_texts()
    assert len(statuses) == 3 and all(s.startswith("Revoked") for s in statuses), statuses
    screenshot(page, "admin_keys_after_compromise")

    # A key issued afterwards works: the response revoked what existed when it was decided.
    _, later = api_key_create(client=customer, name="after the incident", audiences=[RS_AUDIENCE])
    assert active(later)

    page.goto(admin_url("keys/compromiseresponse/"))
    listing = page.inner_text("#result_list")
    assert "Acme inference" in listing and superuser.get_username() in listing
    assert page.locator(".object-tools a.addlink").count() == 0
    screenshot(page, "admin_compromise_responses")


@browser
@live_db
def test_compromise_response_as_an_action(page: Any, live_server: Any, superuser: Any, customer: Any) -> None:
    key, plaintext = api_key_create(client=customer, name="worker", audiences=[RS_AUDIENCE])
    admin_login(page, superuser)
    page.goto(admin_url(f"keys/apikey/?client__id__exact={customer.pk}"))
    page.check("#action-toggle")
    page.select_option("select[name=action]", "compromise_response")
    page.click("button[name=index]")
    page.wait_for_selector("#compromise-form")
    assert active(plaintext)  # the confirmation page changed nothing
    page.click("#compromise-submit")
    page.wait_for_selector(".messagelist .success")
    assert page.url.endswith(f"?client__id__exact={customer.pk}")  # back to the filtered list
    assert not active(plaintext)
    assert CompromiseResponse.objects.filter(client=customer).count() == 1


# -- HTTP (no browser) ----------------------------------------------------------------------------

User = get_user_model()


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:keys_apikey_{name}", args=args)


def staff_with(*codenames: str) -> HttpClient:
    user = User.objects.create_user("staff", password="x-unused-password-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    http = HttpClient()
    http.force_login(user)
    return http


@pytest.fixture
def http_superuser(db: Any) -> HttpClient:
    http = HttpClient()
    http.force_login(User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


@pytest.fixture
def owner(db: Any) -> Any:
    client, _ = make_client(name="owner", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    return client


def add_form(client: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "client": client.pk,
        "name": "k",
        "audiences": RS_AUDIENCE,
        "allowed_ips": "",
        "expires_in": "",
        "rate_limit": "",
        "quota": "",
        **overrides,
    }


@pytest.mark.django_db
def test_http_add_shows_the_key_once_and_logs_no_secret(http_superuser: HttpClient, owner: Any) -> None:
    once = http_superuser.get(url("add")).context["once"]
    response = http_superuser.post(url("add"), add_form(owner, _once=once))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    plaintext = response.context["plaintext"]
    assert response.content.decode().count(plaintext) == 1
    assert not response.cookies.get("messages") and "Location" not in response
    key = ApiKey.objects.get()
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert plaintext not in entry.object_repr and plaintext not in entry.change_message
    # Resubmitting the same form issues nothing and shows nothing.
    again = http_superuser.post(url("add"), add_form(owner, _once=once), follow=True)
    assert ApiKey.objects.count() == 1
    assert again.redirect_chain[0][0] == url("change", key.pk)
    assert "already issued" in again.content.decode() and plaintext not in again.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"allowed_ips": "not-an-ip"}, "allowed_ips", "invalid CIDR"),
        ({"allowed_ips": "2001:db8::1/32"}, "allowed_ips", "host bits set"),
        ({"rate_limit": "fast"}, "rate_limit", "N/PERIOD"),
        ({"rate_limit": "10/2d"}, "rate_limit", "1 s to 1 d"),
        ({"expires_in": "3 weeks"}, "expires_in", "invalid duration"),
        ({"expires_in": "9999d"}, "expires_in", "at most"),
        ({"quota": "0"}, "quota", "greater than or equal to 1"),
        ({"audiences": "https://elsewhere.example.test"}, "audiences", "not allowed for this client"),
        ({"name": "   "}, "name", "required"),
    ],
)
@pytest.mark.django_db
def test_http_add_errors_land_on_the_form(
    http_superuser: HttpClient, owner: Any, overrides: dict, field: str, message: str
) -> None:
    response = http_superuser.post(url("add"), add_form(owner, **overrides))
    assert response.status_code == 200
    assert response.context.get("plaintext") is None
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_http_change_page_is_read_only(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="fixed", audiences=[RS_AUDIENCE])
    assert http_superuser.post(url("change", key.pk), {"name": "renamed", "scope": "x"}).status_code == 405
    key.refresh_from_db()
    assert key.name == "fixed"
    page = http_superuser.get(url("change", key.pk)).content.decode()
    assert 'name="_save"' not in page and key.digest not in page
    assert url("delete", key.pk) not in page
    assert http_superuser.get(url("delete", key.pk)).status_code == 403
    listing = http_superuser.get(url("changelist")).content.decode()
    assert "delete_selected" not in listing


@pytest.mark.django_db
def test_http_lifecycle_needs_change_permission(owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="guarded", audiences=[RS_AUDIENCE])
    viewer = staff_with("view_apikey", "view_client", "change_client")
    assert viewer.get(url("change", key.pk)).status_code == 200
    assert viewer.get(url("usage", key.pk)).status_code == 200
    for name in ("rotate", "revoke"):
        assert viewer.get(url(name, key.pk)).status_code == 403
    for name, data in (("rotate", {"grace": "1h"}), ("revoke", {"confirm": "yes"}), ("suspend", {}), ("resume", {})):
        assert viewer.post(url(name, key.pk), data).status_code == 403
    assert viewer.post(url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.ACTIVE and not ApiKey.objects.filter(rotated_from=key).exists()
    assert not CompromiseResponse.objects.exists()
    page = viewer.get(url("change", key.pk)).content.decode()
    for fragment in ("/rotate/", "/revoke/", "/suspend/", "/resume/", "/compromise/"):
        assert fragment not in page
    listing = viewer.get(url("changelist"), {"client__id__exact": owner.pk}).content.decode()
    assert "compromise_response" not in listing and "/compromise/" not in listing


@pytest.mark.django_db
def test_http_compromise_also_needs_client_change_permission(owner: Any) -> None:
    api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    keys_only = staff_with("view_apikey", "change_apikey")
    assert keys_only.get(url("compromise", owner.pk)).status_code == 403
    assert keys_only.post(url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    assert not CompromiseResponse.objects.exists()


@pytest.mark.django_db
def test_http_lifecycle_is_csrf_protected_post(owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="csrf", audiences=[RS_AUDIENCE])
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    for name, data in (("rotate", {"grace": "1h"}), ("revoke", {"confirm": "yes"}), ("suspend", {}), ("resume", {})):
        assert http.post(url(name, key.pk), data).status_code == 403
    assert http.post(url("compromise", owner.pk), {"confirm": "yes"}).status_code == 403
    # GETs show confirmation pages (or refuse) and never change anything.
    assert http.get(url("rotate", key.pk)).status_code == 200
    assert http.get(url("revoke", key.pk)).status_code == 200
    assert http.get(url("compromise", owner.pk)).status_code == 200
    assert http.get(url("suspend", key.pk)).status_code == 405
    assert http.get(url("resume", key.pk)).status_code == 405
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.ACTIVE and key.grace_ends is None
    assert not CompromiseResponse.objects.exists()


@pytest.mark.django_db
def test_http_resubmitting_a_rotation_does_not_rotate_again(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="once", audiences=[RS_AUDIENCE])
    once = http_superuser.get(url("rotate", key.pk)).context["once"]
    first = http_superuser.post(url("rotate", key.pk), {"grace": "1h", "_once": once})
    assert first.status_code == 200 and first.context["plaintext"]
    successor = ApiKey.objects.get(rotated_from=key)
    again = http_superuser.post(url("rotate", key.pk), {"grace": "1h", "_once": once})
    assert again.status_code == 302 and again["Location"] == url("change", successor.pk)
    assert ApiKey.objects.count() == 2
    assert first.context["plaintext"] not in http_superuser.get(again["Location"]).content.decode()


@pytest.mark.django_db
def test_http_client_with_keys_can_still_be_deleted(http_superuser: HttpClient, owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    confirm = http_superuser.get(reverse("admin:clients_client_delete", args=[owner.pk]))
    assert confirm.status_code == 200 and not confirm.context["perms_lacking"]
