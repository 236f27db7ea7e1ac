"""The usage roll-up on a real Celery worker: verification only counts (in the counter store the
worker shares), the job writes the totals and the hourly buckets, and a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from keys import jobs, tasks
from keys.models import ApiKey, ApiKeyUsage
from keys.services import api_key_create
from keys.usage import flush_usage
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE
from tests.keys.conftest import wait_for


def test_usage_roll_up_on_a_real_worker(worker, key_owner):
    busy, busy_plaintext = api_key_create(client=key_owner, name="busy")
    calm, calm_plaintext = api_key_create(client=key_owner, name="calm")
    idle, _ = api_key_create(client=key_owner, name="idle")
    started = timezone.now()
    for _ in range(7):
        assert api_key_verify(key=busy_plaintext, audience=RS_AUDIENCE, client_ip="203.0.113.7")["active"] is True
    for _ in range(3):
        assert api_key_verify(key=calm_plaintext, audience=RS_AUDIENCE, client_ip="2001:db8::1")["active"] is True
    assert api_key_verify(key=busy_plaintext, audience="https://not-mine.example.test", client_ip=None) == {
        "active": False}  # refused: not counted
    flush_usage()  # the background flush, now rather than within a second
    assert ApiKey.objects.get(pk=busy.pk).uses == 0, "verification never writes the database"

    tasks.usage_roll_up.delay()
    wait_for(lambda: ApiKey.objects.filter(pk=calm.pk, uses=3).exists()
              and ApiKey.objects.filter(pk=busy.pk, uses=7).exists(), "the roll-up on the worker", worker)

    rows = {k.pk: k for k in ApiKey.objects.filter(pk__in=[busy.pk, calm.pk, idle.pk])}
    assert rows[busy.pk].last_used_ip == "203.0.113.7" and rows[calm.pk].last_used_ip == "2001:db8::1"
    for pk in (busy.pk, calm.pk):
        assert started - timedelta(seconds=1) <= rows[pk].last_used <= timezone.now()
    assert rows[idle.pk].uses == 0 and rows[idle.pk].last_used is None
    per_key = {pk: sum(ApiKeyUsage.objects.filter(key_id=pk).values_list("requests", flat=True))
               for pk in (busy.pk, calm.pk, idle.pk)}
    assert per_key == {busy.pk: 7, calm.pk: 3, idle.pk: 0}
    for usage in ApiKeyUsage.objects.all():
        assert usage.hour.minute == usage.hour.second == 0
        assert started - timedelta(hours=1) < usage.hour <= timezone.now()

    # Drained: a second roll-up adds nothing.
    assert jobs.usage_roll_up() == {"keys": 0, "requests": 0}
    assert ApiKey.objects.get(pk=busy.pk).uses == 7
    assert sum(ApiKeyUsage.objects.values_list("requests", flat=True)) == 10
