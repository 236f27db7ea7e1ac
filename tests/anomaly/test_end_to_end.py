"""Through real HTTP requests (Django test client) and the real job: traffic is counted on the hot
paths, a spike and a new network are detected, the configured actions are enforced, the admin
shows and undoes them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authserver import counters
from authserver.anomaly import jobs
from authserver.anomaly.models import Action, Anomaly, AnomalyPolicy, AnomalyStatus, Baseline, Signal, TrafficMinute
from authserver.anomaly.services import limits_publish
from keys.models import ApiKeyStatus
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, UserFactory
from tests.helpers import client_credentials, introspect, staff_login

pytestmark = pytest.mark.django_db


def _job_after_this_minute() -> dict:
    """The real job, as the beat would run it just after the current minute ends."""
    return jobs.traffic_minute(now=datetime.now(UTC) + timedelta(seconds=61))


def test_spike_and_new_network_detected_and_acted_on(client, owner, resource_server, anomaly_settings,
                                                     django_capture_on_commit_callbacks, webhook_sink):
    rs, rs_secret = resource_server
    AnomalyPolicy.objects.create(signal=Signal.NEW_NETWORK, client=owner, action=Action.SUSPEND)
    key, plaintext = api_key_create(client=owner, name="prod", audiences=[RS_AUDIENCE])
    series = f"key:{key.id}"

    # One real use from the key's usual network; the job records it as history.
    assert introspect(client, rs, rs_secret, plaintext, client_ip="192.0.2.10").json()["active"] is True
    jobs.traffic_minute()
    # An hour of steady history (~10/min) before this minute.
    this_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    TrafficMinute.objects.bulk_create([
        TrafficMinute(subject=series, minute=this_minute - timedelta(minutes=m), count=8 + m % 5, evaluated=True)
        for m in range(1, 61)])
    Baseline.objects.filter(subject=series).update(first_seen=this_minute - timedelta(minutes=60))

    started = time.monotonic()
    answers = [introspect(client, rs, rs_secret, plaintext, client_ip=f"192.0.2.{i % 200}").json()
               for i in range(150)]
    assert all(a["active"] for a in answers)
    assert introspect(client, rs, rs_secret, plaintext, client_ip="198.51.100.7").json()["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        result = _job_after_this_minute()
    detection_seconds = time.monotonic() - started
    anomalies = {a.signal: a for a in Anomaly.objects.all()}
    assert set(anomalies) == {Signal.VOLUME, Signal.NEW_NETWORK}, result
    assert anomalies[Signal.NEW_NETWORK].action_taken == "key suspended"
    assert anomalies[Signal.VOLUME].action_taken.startswith("limit tightened")
    print(f"\n[anomaly end-to-end] 150 requests + 1 from a new /24 over HTTP, then the job: both anomalies "
          f"recorded {detection_seconds:.2f} s after the spike started (the beat runs the job every minute)")

    # Suspended: the answer is exactly inactive.
    assert introspect(client, rs, rs_secret, plaintext, client_ip="192.0.2.10").content == b'{"active": false}'
    assert sorted(p["signal"] for p in webhook_sink["json"]()) == ["new_network", "volume"]

    # Undo from the admin: the key is resumed; the tightened limit still holds.
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    staff_login(client, admin_user)
    base = f"/{django_settings.ADMIN_PATH}/anomaly/anomaly/"
    dashboard = client.get(base + "dashboard/")
    assert dashboard.status_code == 200 and b"<svg" in dashboard.content and b"Undo action (resume key)" in dashboard.content
    page = client.get(f"{base}{anomalies[Signal.NEW_NETWORK].pk}/change/")
    assert page.status_code == 200 and b"<svg" in page.content and b"198.51.100.0/24" in page.content
    assert client.get(f"{base}{anomalies[Signal.NEW_NETWORK].pk}/handle/undo/").status_code == 405
    response = client.post(f"{base}{anomalies[Signal.NEW_NETWORK].pk}/handle/undo/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.ACTIVE
    client.post(f"{base}{anomalies[Signal.VOLUME].pk}/handle/acknowledge/")
    assert Anomaly.objects.get(pk=anomalies[Signal.VOLUME].pk).status == AnomalyStatus.ACKNOWLEDGED
    client.logout()

    tightened = Baseline.objects.get(subject=series).effective_limit
    assert tightened < 60
    limits_publish()  # again: a concurrent test run sharing the Redis database may have wiped the store
    answers = [introspect(client, rs, rs_secret, plaintext, client_ip="192.0.2.10").json()
               for _ in range(tightened + 5)]
    limited = [a for a in answers if a.get("rate_limited")]
    assert limited, (tightened, counters.effective_limit(series))
    assert limited[0]["rate_limit"]["limit"] == tightened
    assert sum(1 for a in answers if a["active"]) <= tightened

    # The baselines admin shows the history and lets an operator pin a limit.
    staff_login(client, admin_user)
    baseline = Baseline.objects.get(subject=series)
    page = client.get(f"/{django_settings.ADMIN_PATH}/anomaly/baseline/{baseline.pk}/change/")
    assert page.status_code == 200 and b"tightened by anomaly" in page.content


def test_token_client_limit_follows_the_effective_limit(client, service_client, anomaly_settings):
    app, secret = service_client
    assert client_credentials(client, app, secret).status_code == 200
    counters.publish_limits({f"client:{app.client_id}": 2})
    statuses = [client_credentials(client, app, secret).status_code for _ in range(3)]
    assert statuses[-1] == 429
    jobs.traffic_minute(now=datetime.now(UTC) + timedelta(seconds=61))
    assert TrafficMinute.objects.filter(subject=f"client:{app.client_id}").get().count == 4, "attempts are counted"


def test_pinned_limit(client, service_client, anomaly_settings):
    from authserver.anomaly.services import limit_pin

    app, secret = service_client
    limit_pin(subject=f"client:{app.client_id}", limit=1, actor="test")
    assert [client_credentials(client, app, secret).status_code for _ in range(2)] == [200, 429]
    limit_pin(subject=f"client:{app.client_id}", limit=None, actor="test")
    assert Baseline.objects.get().effective_limit == anomaly_settings.ANOMALY_DEFAULT_LIMIT


def test_signals_from_real_requests(client, owner, service_client, resource_server, anomaly_settings):
    anomaly_settings.ANOMALY_AUTH_FAILURE_BURST = 3
    anomaly_settings.ANOMALY_INVALID_TOKEN_BURST = 3
    anomaly_settings.ANOMALY_FISHING_BURST = 3
    rs, rs_secret = resource_server
    app, secret = service_client
    wrong = "cs_" + secret[3:-1] + ("A" if secret[-1] != "A" else "B")
    for _ in range(3):
        response = client.post("/oauth/token", {"grant_type": "client_credentials"}, REMOTE_ADDR="203.0.113.5",
                               HTTP_AUTHORIZATION=basic_auth(app.client_id, wrong))
        assert response.status_code == 401
    for i in range(3):
        assert introspect(client, rs, rs_secret, f"at_unknown{i}", client_ip="203.0.113.77").json() == {"active": False}
    key, plaintext = api_key_create(client=owner, name="gone", audiences=[RS_AUDIENCE])
    from keys.services import api_key_revoke

    api_key_revoke(key=key)
    assert introspect(client, rs, rs_secret, plaintext).content == b'{"active": false}'
    _job_after_this_minute()
    signals = set(Anomaly.objects.values_list("signal", flat=True))
    assert signals == {Signal.AUTH_FAILURES, Signal.INVALID_TOKENS, Signal.TOKEN_FISHING, Signal.REVOKED_USE}
    assert Anomaly.objects.get(signal=Signal.AUTH_FAILURES).personal == {"address": "203.0.113.5"}
    assert Anomaly.objects.get(signal=Signal.INVALID_TOKENS).personal == {"address": "203.0.113.77"}


def test_hooks_add_no_query_to_introspection(client, owner, resource_server, anomaly_settings):
    rs, rs_secret = resource_server
    _, plaintext = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    assert introspect(client, rs, rs_secret, plaintext, client_ip="192.0.2.1").json()["active"]
    counters.publish_limits({"unrelated": 5})
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert introspect(client, rs, rs_secret, plaintext, client_ip="192.0.2.1").json()["active"]
    assert len(queries) == 0
