"""The API-key admin's usage page: hourly and daily charts from the usage roll-up, gaps as zeros."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.utils import timezone

from keys.models import ApiKeyUsage
from keys.services import api_key_create
from tests.browser.conftest import (
    CALLER_IP,
    admin_login,
    key_url,
    screenshot,
    seed_usage,
)
from tests.factories import RS_AUDIENCE

browser = pytest.mark.browser
live_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)
pytestmark = pytest.mark.usefixtures("fresh_key_counters")


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
