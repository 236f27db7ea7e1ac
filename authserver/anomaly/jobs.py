"""The per-minute job: drain traffic, update baselines and effective limits, detect, act.

Idempotent per drained batch; each step works on what is in the database, so a run that dies
midway leaves minutes unevaluated for the next run to pick up.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from authserver.anomaly import detection
from authserver.anomaly.models import Baseline, Cursor, KeyNetwork, Signal, TrafficMinute
from authserver.anomaly.services import anomaly_record, baseline_for, baseline_refresh, limits_publish
from authserver.anomaly.traffic import drain_traffic

log = logging.getLogger("authserver.anomaly.jobs")

BASELINE_PREFIXES = ("client:", "key:")
# Series checked against a fixed per-minute threshold: prefix -> (signal, setting, subject of the anomaly)
BURSTS = {
    "authfail:": (Signal.AUTH_FAILURES, "ANOMALY_AUTH_FAILURE_BURST"),
    "invalid:": (Signal.INVALID_TOKENS, "ANOMALY_INVALID_TOKEN_BURST"),
    "fishing:": (Signal.TOKEN_FISHING, "ANOMALY_FISHING_BURST"),
    "revoked:": (Signal.REVOKED_USE, "ANOMALY_REVOKED_USE_BURST"),
}
NETWORK_PREFIXES = ("authfail:", "invalid:")


def _network_key() -> bytes:
    from authserver.crypto import secret

    return secret("anomaly-network")


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute, UTC)


def traffic_minute(*, now: datetime | None = None) -> dict[str, int]:
    """One run: what the beat schedule calls every minute."""
    now = now or timezone.now()
    counts, pairs = drain_traffic()
    stored, networks = _store(counts)
    result = {"series": len({s for s, _ in counts}), "events": sum(counts.values())}
    result["bursts"] = _check_bursts(counts, networks, now=now)
    result["new_networks"] = _check_networks(pairs, now=now)
    result["refresh_reuse"] = _check_refresh_reuse(now=now)
    result["volume"], result["baselines"] = _check_volume_and_baselines(now=now)
    result["expired_tightening"] = _expire_tightening(now=now)
    result["published"] = limits_publish()
    _prune(now=now)
    return result


def _store(counts: dict[tuple[str, int], int]) -> tuple[int, dict[str, str]]:
    """Add drained counts to TrafficMinute rows; network series are stored under a digest."""
    networks: dict[str, str] = {}
    key = None
    merged: dict[tuple[str, int], int] = defaultdict(int)
    for (series, minute), n in counts.items():
        if series.startswith(NETWORK_PREFIXES):
            prefix, _, network = series.partition(":")
            key = key or _network_key()
            subject = f"{prefix}:{detection.network_digest(network, key)}"
            networks[subject] = network
        else:
            subject = series
        merged[(subject[:120], minute)] += n
    with transaction.atomic():
        for (subject, minute), n in merged.items():
            at = _at(minute)
            burst = subject.startswith(tuple(BURSTS))
            updated = TrafficMinute.objects.filter(subject=subject, minute=at).update(count=F("count") + n)
            if not updated:
                TrafficMinute.objects.create(subject=subject, minute=at, count=n, evaluated=burst)
    return len(merged), networks


def _check_bursts(counts: dict[tuple[str, int], int], networks: dict[str, str], *, now: datetime) -> int:
    """Fixed thresholds per minute, checked as soon as counts arrive (the running total of the minute)."""
    fired = 0
    key = None
    touched: set[tuple[str, int, str]] = set()
    for (series, minute), _ in counts.items():
        for prefix in BURSTS:
            if series.startswith(prefix):
                touched.add((series, minute, prefix))
    for series, minute, prefix in sorted(touched):
        signal, setting = BURSTS[prefix]
        threshold = int(getattr(settings, setting))
        stored_subject = series
        network = None
        if prefix in NETWORK_PREFIXES:
            key = key or _network_key()
            network = series.partition(":")[2]
            stored_subject = f"{prefix[:-1]}:{detection.network_digest(network, key)}"
        row = TrafficMinute.objects.filter(subject=stored_subject[:120], minute=_at(minute)).values("count").first()
        total = row["count"] if row else 0
        if total < threshold:
            continue
        evidence: dict[str, Any] = {"count": total, "threshold": threshold, "minute": _at(minute).isoformat(),
                                    "per": "minute"}
        if prefix in NETWORK_PREFIXES:
            subject = f"net:{stored_subject.partition(':')[2]}"
            personal = {"address": network}
        elif prefix == "fishing:":
            subject, personal = f"client:{series.partition(':')[2]}", None
            evidence["inactive_answers"] = total
        else:  # revoked:key:<id>
            subject, personal = series.partition(":")[2], None
        anomaly_record(signal=signal, subject=subject, minute=_at(minute), evidence=evidence, personal=personal,
                       series=stored_subject[:120], now=now)
        fired += 1
    return fired


def _check_networks(pairs: set[tuple[str, str]], *, now: datetime) -> int:
    """A key with history seen from a /24 or /48 it never used: an anomaly (the first network is not)."""
    if not pairs:
        return 0
    from keys.models import ApiKey

    key = _network_key()
    by_key: dict[str, set[str]] = defaultdict(set)
    for key_id, network in pairs:
        by_key[key_id].add(network)
    existing_keys = {str(pk): pk for pk in ApiKey.objects.filter(pk__in=list(by_key)).values_list("pk", flat=True)}
    fired = 0
    for key_id, key_pk in sorted(existing_keys.items()):
        known = set(KeyNetwork.objects.filter(key_id=key_pk).values_list("network_digest", flat=True))
        digests = {detection.network_digest(net, key): net for net in by_key[key_id]}
        new = {d: net for d, net in digests.items() if d not in known}
        KeyNetwork.objects.filter(key_id=key_pk, network_digest__in=list(digests)).update(last_seen=now)
        for digest in new:
            KeyNetwork.objects.get_or_create(key_id=key_pk, network_digest=digest,
                                             defaults={"first_seen": now, "last_seen": now})
        if not known:
            continue  # the first networks a key is seen from are its history, not an anomaly
        for digest, network in sorted(new.items()):
            anomaly_record(signal=Signal.NEW_NETWORK, subject=f"key:{key_id}",
                           minute=now.replace(second=0, microsecond=0), series=f"key:{key_id}", now=now,
                           evidence={"network_digest": digest, "known_networks": len(known),
                                     "unit": "/48" if ":" in network else "/24"},
                           personal={"network": network})
            fired += 1
    return fired


def _check_refresh_reuse(*, now: datetime) -> int:
    """Turn the audit trail's ``token.refresh_reuse`` events into anomalies (once each)."""
    from authserver.audit.models import AuditEvent
    from authserver.audit.sealer import audit_seal

    audit_seal()  # usually a no-op (beat seals every few seconds); here so the scan sees events just committed
    # The cursor follows the sealed order (seq): ids commit out of order, so an id cursor could
    # pass an event whose transaction committed late (existing cursors were ids, and seq = id there).
    cursor = Cursor.objects.filter(name="refresh_reuse").first()
    events = AuditEvent.objects.filter(event="token.refresh_reuse", seq__isnull=False).order_by("seq")
    if cursor is None:
        cursor = Cursor(name="refresh_reuse", value=0)
        events = events.filter(at__gte=now - timedelta(minutes=settings.ANOMALY_DEDUPE_MINUTES))
    fired = 0
    for event in events.filter(seq__gt=cursor.value).values("id", "seq", "at", "actor", "subject", "details")[:500]:
        actor = event["actor"] if event["actor"].startswith("client:") else ""
        anomaly_record(signal=Signal.REFRESH_REUSE, subject=actor or event["subject"],
                       minute=event["at"].replace(second=0, microsecond=0), now=now,
                       series=actor or "", evidence={"audit_event": event["id"], "user": event["subject"],
                                                     **event["details"]})
        cursor.value = event["seq"] or 0  # never None: sealed events only
        fired += 1
    cursor.save()
    return fired


def _check_volume_and_baselines(*, now: datetime) -> tuple[int, int]:
    """Check each complete, unchecked minute of each credential against its baseline; update baselines."""
    cfg = detection.Config.from_settings()
    current = int(now.timestamp() // 60 * 60)
    pending: dict[str, list[int]] = defaultdict(list)
    for subject, minute_at in (TrafficMinute.objects.filter(evaluated=False, minute__lt=_at(current))
                               .values_list("subject", "minute")):
        if subject.startswith(BASELINE_PREFIXES):
            pending[subject].append(int(minute_at.timestamp()))
    fired = 0
    for subject in sorted(pending):
        minutes = sorted(pending[subject])
        earliest = (TrafficMinute.objects.filter(subject=subject).order_by("minute")
                    .values_list("minute", flat=True).first())
        baseline = baseline_for(subject, now=earliest or _at(minutes[0]))
        first_seen = int(baseline.first_seen.timestamp() // 60 * 60)
        first_seen = min(first_seen, minutes[0])
        since = max(first_seen, minutes[0] - cfg.window * 60)
        rows = {int(m.timestamp()): (c, f) for m, c, f in TrafficMinute.objects.filter(
            subject=subject, minute__gte=_at(since), minute__lt=_at(current)).values_list("minute", "count", "flagged")}
        flagged: list[int] = []
        for minute in minutes:
            history = detection.zero_filled(rows, start=max(first_seen, minute - cfg.window * 60), end=minute)
            st = detection.stats(history, cfg)
            count = rows.get(minute, (0, False))[0]
            if detection.is_volume_anomaly(count, st, cfg):
                rows[minute] = (count, True)
                flagged.append(minute)
                anomaly_record(signal=Signal.VOLUME, subject=subject, minute=_at(minute), series=subject, now=now,
                               stats=st, evidence={"count": count, "threshold": detection.volume_threshold(st, cfg),
                                                   "baseline_high": round(st.high, 2),
                                                   "baseline_mean": round(st.mean, 2), "samples": st.samples})
                fired += 1
        TrafficMinute.objects.filter(subject=subject, minute__in=[_at(m) for m in minutes]).update(evaluated=True)
        if flagged:
            TrafficMinute.objects.filter(subject=subject, minute__in=[_at(m) for m in flagged]).update(flagged=True)
        # The baseline now: every complete minute up to the current one.
        history = detection.zero_filled(rows, start=max(first_seen, current - cfg.window * 60), end=current)
        st = detection.stats(history, cfg)
        baseline.refresh_from_db()
        if baseline.first_seen.timestamp() > first_seen:
            baseline.first_seen = _at(first_seen)
            baseline.save(update_fields=["first_seen"])
        baseline.samples, baseline.mean, baseline.median, baseline.high = st.samples, st.mean, st.median, st.high
        baseline.ewma, baseline.ewm_std = st.ewma, st.ewm_std
        baseline.computed_limit = detection.computed_limit(st, cfg)
        baseline_refresh(baseline, now=now, cfg=cfg)
    return fired, len(pending)


def _expire_tightening(*, now: datetime) -> int:
    """End every anomaly's tightened limit whose time is up: one ``anomaly.tightening_expired``
    event per credential whose limit is lifted (an auto-action ending is a change too)."""
    from authserver.audit.services import audit_record

    expired = list(Baseline.objects.filter(tightened_until__lte=now))
    for baseline in expired:
        tightened = {"tightened_limit": baseline.tightened_limit,
                     "tightened_until": baseline.tightened_until.isoformat() if baseline.tightened_until else None}
        with transaction.atomic():
            baseline_refresh(baseline, now=now, note="tightening expired")
            audit_record(event="anomaly.tightening_expired", actor="job:anomaly.traffic_minute",
                         subject=baseline.subject, details={**tightened, "effective_limit": baseline.effective_limit})
    return len(expired)


def _prune(*, now: datetime) -> None:
    keep = timedelta(days=settings.ANOMALY_TRAFFIC_RETENTION_DAYS)
    TrafficMinute.objects.filter(minute__lt=now - keep).delete()
