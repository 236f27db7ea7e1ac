"""The management API's usage read-out: hourly or daily buckets, gaps filled with zeros."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from keys.models import ApiKey, ApiKeyUsage
from keys.services import api_key_create
from tests.keys.conftest import KEYS, get

pytestmark = pytest.mark.django_db


def test_usage_fills_missing_buckets(client, admin, owner):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    now = timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    ApiKeyUsage.objects.create(key=key, hour=this_hour, requests=5)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(hours=3), requests=7)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(days=2), requests=11)
    ApiKeyUsage.objects.create(key=key, hour=this_hour - timedelta(days=40), requests=1000)  # outside
    ApiKey.objects.filter(pk=key.pk).update(uses=1023, last_used=now)
    key.last_used_ip = "198.51.100.4"  # encrypted: written through save(), never update()
    key.save(update_fields=["last_used_ip"])

    hourly = get(client, f"{KEYS}/{key.pk}/usage", token, {"granularity": "hour", "days": 1})
    assert hourly.status_code == 200, hourly.content
    body = hourly.json()
    # No last_used_ip: personal data, for callers with the personal-data scope only (test_last_used_ip.py).
    assert set(body) == {"key_id", "granularity", "start", "end", "total", "uses", "last_used", "buckets"}
    assert body["key_id"] == str(key.pk) and body["granularity"] == "hour"
    assert len(body["buckets"]) == 24 and body["total"] == 12
    assert [b["requests"] for b in body["buckets"]][-4:] == [7, 0, 0, 5]
    assert body["uses"] == 1023 and body["last_used"] is not None
    starts = [b["start"] for b in body["buckets"]]
    assert starts == sorted(starts) and body["start"] == starts[0]

    daily = get(client, f"{KEYS}/{key.pk}/usage", token).json()  # defaults: day, 30 days
    assert daily["granularity"] == "day" and len(daily["buckets"]) == 30
    assert daily["total"] == 23
    assert sum(b["requests"] for b in daily["buckets"]) == 23
    assert all(set(b) == {"start", "requests"} for b in daily["buckets"])


@pytest.mark.parametrize("query", [{"granularity": "minute"}, {"days": 0}, {"days": 91}, {"days": "x"}])
def test_usage_bad_query_is_400(client, admin, owner, query):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    response = get(client, f"{KEYS}/{key.pk}/usage", token, query)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_usage_of_an_unused_key_is_all_zero(client, admin, owner):
    _, token = admin
    key, _ = api_key_create(client=owner, name="u")
    body = get(client, f"{KEYS}/{key.pk}/usage", token, {"granularity": "hour", "days": 2}).json()
    assert len(body["buckets"]) == 48 and body["total"] == 0 and body["last_used"] is None
