"""The audit trail and anomaly admin in a real browser.

Audit trail: searchable, read-only, personal data decrypted only for staff with
``audit.view_personal_data``. Anomalies: the dashboard and change page draw the traffic around an
anomaly as inline SVG, show the evidence, and acknowledge/resolve are POST buttons.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from authserver.anomaly.models import Anomaly, AnomalyStatus, Signal, TrafficMinute
from authserver.anomaly.services import anomaly_record
from authserver.audit.models import AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.services import audit_record
from keys.services import api_key_create
from tests.browser.conftest import ADMIN_PASSWORD, admin_login, screenshot
from tests.factories import RS_AUDIENCE, make_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SECRET_IP = "198.51.100.7"
SECRET_UA = "curl/8"


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def staff_user(username: str, *codenames: str) -> Any:
    user = get_user_model().objects.create_user(username, f"{username}@example.test", ADMIN_PASSWORD, is_staff=True)
    perms = Permission.objects.filter(codename__in=codenames)
    assert perms.count() == len(codenames), list(perms.values_list("codename", flat=True))
    user.user_permissions.set(perms)
    return user


def seed_audit_trail() -> AuditEvent:
    audit_record(event="client.registered", actor="user:1", subject="client:acme", details={"name": "Acme"})
    audit_record(
        event="token.issued",
        actor="client:acme",
        subject="client:acme",
        details={"grant": "client_credentials", "scope": "ai.infer"},
    )
    failure = audit_record(
        event="client.auth_failed",
        outcome="failure",
        actor="client:acme",
        subject="client:acme",
        details={"reason": "bad secret"},
        personal={"ip": SECRET_IP, "user_agent": SECRET_UA},
    )
    audit_record(
        event="key.revoked",
        actor="user:1",
        subject="key:1234",
        details={"reason": "rotation"},
        personal={"ip": "192.0.2.44"},
    )
    return failure


# -- audit trail ----------------------------------------------------------------------------------


def test_audit_trail_is_searchable_read_only_and_guards_personal_data(
    page: Any, live_server: Any, superuser: Any, browser: Any
) -> None:
    event = seed_audit_trail()
    audit_seal()  # beat does this within seconds; the page shows the event's place in the chain
    event = AuditEvent.objects.get(pk=event.pk)
    event_url = admin_url(f"audit/auditevent/{event.pk}/change/")

    admin_login(page, superuser)
    page.goto(admin_url("audit/auditevent/"))
    # The four seeded events, the superuser's password set at its creation, its own login and its
    # second factor (staff.factor.passed).
    assert page.locator("#result_list tbody tr").count() == AuditEvent.objects.count() == 7
    page.fill("#searchbar", "auth_failed")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/?q=auth_failed")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "client.auth_failed" in rows.inner_text() and "failure" in rows.inner_text()
    # No add button; the only action is the export (no bulk delete).
    assert page.locator(".object-tools a.addlink").count() == 0
    assert page.locator("select[name=action] option[value=delete_selected]").count() == 0
    assert page.locator("select[name=action] option[value=export_jsonl]").count() == 1
    screenshot(page, "admin_audit_list")

    rows.locator("th a, td a").first.click()
    page.wait_for_selector(".field-personal_data")
    assert event_url in page.url
    personal = page.inner_text(".field-personal_data")
    assert SECRET_IP in personal and SECRET_UA in personal
    assert "bad secret" in page.inner_text(".field-details_pretty")
    assert event.chain and event.chain in page.inner_text(".field-chain")
    # Read-only: no save buttons, no delete link.
    assert page.locator("input[name=_save], input[name=_continue], input[name=_addanother]").count() == 0
    assert page.locator("a.deletelink").count() == 0
    assert page.locator("#auditevent_form").locator("input:not([type=hidden]), textarea, select").count() == 0
    screenshot(page, "admin_audit_event")

    # A staff member who may view the trail but not the personal data: "encrypted", the address nowhere.
    viewer = staff_user("auditor", "view_auditevent")
    other = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    try:
        staff_page = other.new_page()
        admin_login(staff_page, viewer)
        staff_page.goto(event_url)
        staff_page.wait_for_selector(".field-personal_data_hidden")
        assert "encrypted" in staff_page.inner_text(".field-personal_data_hidden")
        html = staff_page.content()
        assert SECRET_IP not in html and SECRET_UA not in html
        assert staff_page.locator("input[name=_save], a.deletelink").count() == 0
        screenshot(staff_page, "admin_audit_event_no_personal")

        staff_page.goto(admin_url("audit/auditevent/"))
        html = staff_page.content()
        assert SECRET_IP not in html and "192.0.2.44" not in html
        assert staff_page.locator(".object-tools a.addlink").count() == 0
    finally:
        other.close()


# -- anomalies ------------------------------------------------------------------------------------


def seed_spike() -> tuple[Anomaly, str]:
    client, _ = make_client(name="Acme inference", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    key, _ = api_key_create(client=client, name="batch jobs", audiences=[RS_AUDIENCE])
    series = f"key:{key.pk}"
    spike_at = timezone.now().astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    rows = []
    for offset in range(-60, 11):
        minute = spike_at + timedelta(minutes=offset)
        count = 40 + (offset * 7) % 13
        flagged = 0 <= offset < 3
        if flagged:
            count = 420 - offset * 60
        rows.append(TrafficMinute(subject=series, minute=minute, count=count, evaluated=True, flagged=flagged))
    TrafficMinute.objects.bulk_create(rows)
    evidence = {"count": 420, "baseline_high": 52, "factor": 8.1, "window_minutes": 120}
    anomaly, created = anomaly_record(
        signal=Signal.VOLUME, subject=series, minute=spike_at, evidence=evidence, series=series
    )
    assert created
    return anomaly, series


def test_anomaly_dashboard_chart_evidence_and_handling(page: Any, live_server: Any, superuser: Any) -> None:
    anomaly, series = seed_spike()
    admin_login(page, superuser)

    page.goto(admin_url("anomaly/anomaly/"))
    assert page.locator("#result_list tbody tr").count() == 1
    assert series in page.inner_text("#result_list")
    page.click(".object-tools a:has-text('Dashboard')")
    page.wait_for_selector("svg.as-anomaly-chart")
    assert page.url.endswith(admin_url("anomaly/anomaly/dashboard/"))
    section = page.locator("#content-main section").filter(has_text=series)
    assert section.count() == 1
    chart = section.locator("svg.as-anomaly-chart")
    assert chart.locator("rect.bar").count() == 76  # 60 minutes before, the minute, 15 after
    assert chart.locator("rect.flagged").count() == 3
    assert chart.locator("line.marker").count() == 1
    assert chart.bounding_box()["width"] > 600  # drawn, not collapsed to nothing
    assert "420" in section.inner_text()  # the evidence
    assert "Open" in section.inner_text()
    screenshot(page, "admin_anomaly_dashboard")

    section.locator("h2 a").click()
    page.wait_for_selector(".field-evidence_display")
    assert page.url.endswith(admin_url(f"anomaly/anomaly/{anomaly.pk}/change/"))
    detail_chart = page.locator(".field-traffic svg.as-anomaly-chart")
    assert detail_chart.count() == 1
    assert detail_chart.locator("rect.bar").count() == 76
    # The <svg> has only a viewBox: inside the read-only row (a flex item) it used to collapse to 0 px.
    assert detail_chart.bounding_box()["width"] > 600
    assert "baseline high" in page.inner_text(".field-evidence_display")  # a definition list, words for keys
    assert "limit tightened" in page.inner_text(".field-action_taken")
    screenshot(page, "admin_anomaly_detail")

    with page.expect_response(lambda r: r.request.method == "POST" and "/handle/acknowledge/" in r.url) as posted:
        page.click(".object-tools button:has-text('Acknowledge')")
    assert posted.value.status == 302
    page.wait_for_selector(".messagelist li")
    assert "Anomaly acknowledged." in page.inner_text(".messagelist")
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.ACKNOWLEDGED and anomaly.handled_by
    assert AuditEvent.objects.filter(event="anomaly.acknowledged", subject=series).count() == 1
    screenshot(page, "admin_anomaly_acknowledged")

    # Resolve from the dashboard: back on the dashboard, which is now empty.
    page.goto(admin_url("anomaly/anomaly/dashboard/"))
    page.locator("#content-main section").filter(has_text=series).locator("button:has-text('Resolve')").click()
    page.wait_for_selector(".messagelist li")
    assert page.url.endswith(admin_url("anomaly/anomaly/dashboard/"))
    assert "No open anomalies" in page.inner_text("#content-main")
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED
    screenshot(page, "admin_anomaly_dashboard_resolved")
