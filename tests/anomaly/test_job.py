"""The real per-minute job driven with synthetic minutes through the counters store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from authserver import counters
from authserver.anomaly import jobs
from authserver.anomaly.models import Action, Anomaly, AnomalyPolicy, Baseline, KeyNetwork, Signal, TrafficMinute
from authserver.anomaly.traffic import TRAFFIC
from authserver.audit.models import AuditEvent
from authserver.audit.services import audit_record
from keys.models import ApiKeyStatus
from keys.services import api_key_create, api_key_revoke
from tests.anomaly.traffic import spike, steady
from tests.factories import RS_AUDIENCE

pytestmark = pytest.mark.django_db


def _minute0() -> int:
    return int(time.time() // 60 * 60) - 4 * 3600  # a synthetic past, whole minutes


def run_minute(minute: int, counts: dict[str, int], pairs: set[tuple[str, str]] = frozenset()) -> dict:
    """Count one synthetic minute into the store, then run the job just after that minute ends."""
    counters.backend().add(TRAFFIC, counters.Batch(counts={(series, minute): n for series, n in counts.items() if n},
                                                   pairs=set(pairs)))
    return jobs.traffic_minute(now=datetime.fromtimestamp(minute + 61, UTC))


def test_steady_then_spike_through_the_job(owner, anomaly_settings, django_capture_on_commit_callbacks,
                                           webhook_sink):
    key, _ = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    series = f"key:{key.id}"
    start = _minute0()
    for i, n in enumerate(steady(60, seed=3)):
        run_minute(start + 60 * i, {series: n})
    assert not Anomaly.objects.exists()
    baseline = Baseline.objects.get(subject=series)
    assert baseline.samples == 60
    assert 240 <= baseline.effective_limit <= 480, "converged to ~4 x p99"
    assert counters.effective_limit(series) == baseline.effective_limit, "published for the limiter"
    steady_limit = baseline.effective_limit

    spike_minute = start + 60 * 60
    with django_capture_on_commit_callbacks(execute=True):
        run_minute(spike_minute, {series: spike(1)[0]})
    anomaly = Anomaly.objects.get()
    assert (anomaly.signal, anomaly.subject, anomaly.action) == (Signal.VOLUME, series, Action.TIGHTEN)
    assert anomaly.minute == datetime.fromtimestamp(spike_minute, UTC)
    assert anomaly.evidence["count"] > anomaly.evidence["threshold"]
    baseline.refresh_from_db()
    assert baseline.effective_limit < steady_limit / 2, "tightened to ~1.5 x baseline"
    assert counters.effective_limit(series) == baseline.effective_limit
    assert TrafficMinute.objects.get(subject=series, minute=anomaly.minute).flagged
    # Alerted: signed webhook to the client, e-mail to its contact and the operators; audited.
    assert [p["signal"] for p in webhook_sink["json"]()] == ["volume"]
    assert "owner@example.test" in mail.outbox[0].to and "ops@example.test" in mail.outbox[0].to
    assert AuditEvent.objects.filter(event="anomaly.detected", subject=series).count() == 1

    # The spike going on does not open a second anomaly, nor raise the limit.
    run_minute(spike_minute + 60, {series: spike(1, seed=9)[0]})
    assert Anomaly.objects.get().occurrences == 2
    baseline.refresh_from_db()
    assert baseline.high < 150


def test_webhook_is_signed(owner, anomaly_settings, django_capture_on_commit_callbacks, webhook_sink):
    from standardwebhooks import Webhook

    AnomalyPolicy.objects.create(signal=Signal.REVOKED_USE, client=None, action=Action.ALERT)
    key, _ = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    api_key_revoke(key=key)
    with django_capture_on_commit_callbacks(execute=True):
        run_minute(_minute0(), {f"revoked:key:{key.id}": 3})
    webhook_sink["json"]()
    (headers, body), = webhook_sink["received"]
    envelope = Webhook(webhook_sink["secret"]).verify(body, headers)  # the client's own whsec_ secret
    assert envelope["type"] == "anomaly.detected" and envelope["data"]["signal"] == "revoked_use"
    anomaly = Anomaly.objects.get()
    assert (anomaly.signal, anomaly.subject, anomaly.action_taken) == (Signal.REVOKED_USE, f"key:{key.id}", "alerted")


def test_new_network_of_a_key_with_history(owner, anomaly_settings):
    AnomalyPolicy.objects.create(signal=Signal.NEW_NETWORK, client=owner, action=Action.SUSPEND)
    key, _ = api_key_create(client=owner, name="k", audiences=[RS_AUDIENCE])
    start = _minute0()
    kid = str(key.id)
    run_minute(start, {f"key:{kid}": 5}, {(kid, "192.0.2.0/24")})
    run_minute(start + 60, {f"key:{kid}": 5}, {(kid, "192.0.2.0/24")})
    assert not Anomaly.objects.exists(), "the first network is history, not an anomaly"
    assert KeyNetwork.objects.filter(key=key).count() == 1
    assert "192.0.2" not in str(list(KeyNetwork.objects.values())), "stored as a keyed digest"
    run_minute(start + 120, {f"key:{kid}": 5}, {(kid, "198.51.100.0/24")})
    anomaly = Anomaly.objects.get()
    assert anomaly.signal == Signal.NEW_NETWORK and anomaly.action_taken == "key suspended"
    key.refresh_from_db()
    assert key.status == ApiKeyStatus.SUSPENDED
    assert anomaly.personal == {"network": "198.51.100.0/24"}
    event = AuditEvent.objects.get(event="anomaly.detected")
    assert "198.51.100" not in str(event.details) and "198.51.100" not in event.subject


def test_bursts_per_address_and_fishing(owner, resource_server, anomaly_settings):
    anomaly_settings.ANOMALY_AUTH_FAILURE_BURST = 10
    anomaly_settings.ANOMALY_FISHING_BURST = 50
    rs, _ = resource_server
    start = _minute0()
    run_minute(start, {"authfail:203.0.113.9": 9, f"fishing:{rs.client_id}": 49})
    assert not Anomaly.objects.exists()
    run_minute(start + 60, {"authfail:203.0.113.9": 30, "invalid:203.0.113.10": 500, f"fishing:{rs.client_id}": 80})
    signals = {a.signal: a for a in Anomaly.objects.all()}
    assert set(signals) == {Signal.AUTH_FAILURES, Signal.INVALID_TOKENS, Signal.TOKEN_FISHING}
    net = signals[Signal.AUTH_FAILURES]
    assert net.subject.startswith("net:") and "203.0.113" not in net.subject
    assert net.personal == {"address": "203.0.113.9"}
    assert "alerted" in net.action_taken
    assert signals[Signal.TOKEN_FISHING].subject == f"client:{rs.client_id}"
    assert not TrafficMinute.objects.filter(subject__contains="203.0.113").exists()


def test_refresh_reuse_from_the_audit_trail(owner, anomaly_settings):
    AnomalyPolicy.objects.create(signal=Signal.REFRESH_REUSE, client=owner, action=Action.TIGHTEN)
    audit_record(event="token.refresh_reuse", outcome="failure", actor=f"client:{owner.client_id}",
                 subject="user:1", details={"refresh_token": "rt_abcd", "family_revoked": "x"})
    jobs.traffic_minute()
    anomaly = Anomaly.objects.get()
    assert (anomaly.signal, anomaly.subject) == (Signal.REFRESH_REUSE, f"client:{owner.client_id}")
    assert anomaly.action_taken.startswith("limit tightened")
    jobs.traffic_minute()
    assert Anomaly.objects.count() == 1, "each audit event once"


def test_tightening_expires(owner, anomaly_settings):
    from authserver.anomaly.services import baseline_for, baseline_refresh

    baseline = baseline_for(f"client:{owner.client_id}")
    baseline.tightened_limit, baseline.tightened_until = 7, datetime.now(UTC) + timedelta(minutes=5)
    baseline_refresh(baseline)
    assert counters.effective_limit(baseline.subject) == -7, "published binding: an action applies over operator limits"
    jobs.traffic_minute(now=datetime.now(UTC) + timedelta(minutes=6))
    baseline.refresh_from_db()
    assert baseline.tightened_until is None and baseline.effective_limit == anomaly_settings.ANOMALY_DEFAULT_LIMIT


def test_beat_schedule_exists():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="anomaly.traffic_minute")
    assert task.enabled and task.interval.every == 1 and task.interval.period == "minutes"
