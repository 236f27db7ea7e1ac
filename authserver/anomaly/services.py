"""Writes: recording anomalies (audited), taking and undoing actions, publishing effective limits."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from authserver import counters
from authserver.anomaly import detection
from authserver.anomaly.models import Action, Anomaly, AnomalyStatus, Baseline
from authserver.anomaly.selectors import action_for, subject_credential
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.observability import metrics

log = logging.getLogger("authserver.anomaly")
ACTOR = "anomaly-detector"
HISTORY_LENGTH = 240


# -- Effective limits ------------------------------------------------------------------------------
def baseline_effective(baseline: Baseline, cfg: detection.Config, *, now: datetime) -> int:
    tightened = baseline.tightened_limit if baseline.tightened_until and baseline.tightened_until > now else None
    st = detection.Stats(samples=baseline.samples, mean=baseline.mean, median=baseline.median, high=baseline.high)
    if baseline.subject.startswith("rs:") and not baseline.pinned_limit and tightened is None and not baseline.floored:
        return 0  # resource servers have no adaptive limit of their own, only actions and pins
    return detection.effective_limit(st, cfg, pinned=baseline.pinned_limit, tightened=tightened,
                                     floored=baseline.floored)


def baseline_refresh(baseline: Baseline, *, now: datetime | None = None, cfg: detection.Config | None = None,
                     note: str = "") -> Baseline:
    """Recompute the effective limit of ``baseline`` (pins, tightening, floor), record it, publish it."""
    now = now or timezone.now()
    cfg = cfg or detection.Config.from_settings()
    if baseline.tightened_until and baseline.tightened_until <= now:
        baseline.tightened_until = baseline.tightened_limit = None
    effective = baseline_effective(baseline, cfg, now=now)
    history = list(baseline.history or [])
    if not history or history[-1][1] != effective or note or (now.timestamp() - history[-1][0]) >= 900:
        history.append([int(now.timestamp()), effective, round(baseline.high, 2), note][:4 if note else 3])
    baseline.history = history[-HISTORY_LENGTH:]
    baseline.effective_limit = effective
    baseline.updated = now
    # django-stubs type pk as never None; it is None until the first save.
    if cast(int | None, baseline.pk) is None:
        baseline.save()
    else:
        baseline.save(update_fields=["effective_limit", "history", "updated", "tightened_until", "tightened_limit",
                                     "samples", "mean", "ewma", "ewm_std", "median", "high", "computed_limit",
                                     "pinned_limit", "floored"])
    limits_publish([baseline])
    return baseline


def baseline_binding(baseline: Baseline, *, now: datetime) -> bool:
    """Is the effective limit an operator's pin or an anomaly's action (tightened, floored)? Those
    bind even where the operator set a limit of their own; a limit merely learned from traffic
    (the default for a new credential included) gives way to it (issue 12, item 15)."""
    tightened = baseline.tightened_until is not None and baseline.tightened_until > now
    return bool(baseline.pinned_limit or baseline.floored or tightened)


def limits_publish(baselines: list[Baseline] | None = None) -> int:
    """Write effective limits to the counters store, where the limiter reads them (all if None):
    negative when binding (counters.applicable_limit)."""
    now = timezone.now()
    rows = baselines if baselines is not None else Baseline.objects.only(
        "subject", "effective_limit", "pinned_limit", "floored", "tightened_until")
    limits = {b.subject: (None if not b.effective_limit else
                          -b.effective_limit if baseline_binding(b, now=now) else b.effective_limit) for b in rows}
    try:
        counters.publish_limits(limits)
    except Exception:  # noqa: BLE001 - the next run publishes again
        log.warning("could not publish effective limits", exc_info=True)
        return 0
    return len(limits)


def baseline_for(subject: str, *, now: datetime | None = None) -> Baseline:
    baseline = Baseline.objects.filter(subject=subject).first()
    if baseline is None:
        client, key = subject_credential(subject)
        cfg = detection.Config.from_settings()
        baseline = Baseline(subject=subject, client=client, key=key, first_seen=now or timezone.now(),
                            effective_limit=cfg.default_limit, computed_limit=cfg.default_limit)
        baseline.save()
    return baseline


def limit_pin(*, subject: str, limit: int | None, actor: Any = None) -> Baseline:
    baseline = baseline_for(subject)
    baseline.pinned_limit = limit or None
    with transaction.atomic():
        baseline_refresh(baseline, note=f"pinned {limit}" if limit else "unpinned")
        audit_record(event="anomaly.limit_pinned", actor=actor_label(actor), subject=subject,
                     details={"pinned_limit": limit})
    return baseline


# -- Anomalies -------------------------------------------------------------------------------------
def anomaly_record(*, signal: str, subject: str, minute: datetime, evidence: dict[str, Any],
                   personal: dict[str, Any] | None = None, series: str = "", now: datetime | None = None,
                   stats: detection.Stats | None = None) -> tuple[Anomaly, bool]:
    """Record ``signal`` on ``subject`` (one open anomaly per signal and subject), act on a new one.

    Returns ``(anomaly, created)``. A signal firing again while its anomaly is open adds an
    occurrence instead of a new anomaly (and no second action).
    """
    now = now or timezone.now()
    dedupe = timedelta(minutes=settings.ANOMALY_DEDUPE_MINUTES)
    existing = (Anomaly.objects.filter(signal=signal, subject=subject, last_seen__gte=now - dedupe)
                .exclude(status=AnomalyStatus.RESOLVED).first())
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen = now
        existing.evidence = {**existing.evidence, "latest": evidence}
        existing.save(update_fields=["occurrences", "last_seen", "evidence"])
        return existing, False
    client, key = subject_credential(subject)
    action = action_for(signal, client)
    anomaly = Anomaly(signal=signal, subject=subject, series=series or subject, client=client, key=key,
                      minute=minute, detected=now, last_seen=now, evidence=evidence, personal=personal or None,
                      action=action)
    with transaction.atomic():
        anomaly.action_taken = _act(anomaly, action, stats=stats, now=now)
        anomaly.save()
        audit_record(event="anomaly.detected", outcome="failure", actor=ACTOR, subject=subject,
                     details={"anomaly": str(anomaly.id), "signal": signal, "evidence": evidence,
                              "action": action, "action_taken": anomaly.action_taken},
                     personal=personal or None)
    log.warning("anomaly detected", extra={"signal": signal, "subject": subject, "action": action})
    metrics.anomalies.labels(signal).inc()
    transaction.on_commit(lambda: alert_send(anomaly))
    return anomaly, True


def _limit_subject(anomaly: Anomaly) -> str | None:
    kind, _, ident = anomaly.subject.partition(":")
    if anomaly.signal == "token_fishing" and kind == "client":
        return f"rs:{ident}"
    return anomaly.subject if kind in {"client", "key"} else None


def _act(anomaly: Anomaly, action: str, *, stats: detection.Stats | None, now: datetime) -> str:
    if action == Action.ALERT:
        return "alerted"
    limit_subject = _limit_subject(anomaly)
    if limit_subject is None:
        return f"alerted (no credential to {action}: the subject is a network)"
    if action == Action.SUSPEND and anomaly.key is not None:
        from keys.models import ApiKeyStatus
        from keys.services import api_key_suspend

        if anomaly.key.status != ApiKeyStatus.ACTIVE:
            return f"alerted (key already {anomaly.key.status})"
        api_key_suspend(key=anomaly.key, actor=ACTOR)
        return "key suspended"
    cfg = detection.Config.from_settings()
    baseline = baseline_for(limit_subject, now=now)
    if action == Action.SUSPEND:
        # There is no client suspension yet: hold the client at the floor until the action is undone.
        baseline.floored = True
        baseline_refresh(baseline, now=now, cfg=cfg, note=f"floored by anomaly {anomaly.id}")
        return f"client held at the floor limit ({cfg.floor}/min) until undone: clients can't be suspended yet"
    st = stats or detection.Stats(samples=baseline.samples, mean=baseline.mean, high=baseline.high)
    baseline.tightened_limit = detection.tightened_limit(st, cfg)
    baseline.tightened_until = now + timedelta(seconds=settings.ANOMALY_TIGHTEN_SECONDS)
    baseline_refresh(baseline, now=now, cfg=cfg, note=f"tightened by anomaly {anomaly.id}")
    return (f"limit tightened to {baseline.effective_limit}/min until "
            f"{baseline.tightened_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def alert_send(anomaly: Anomaly) -> None:
    """Webhook to the client, e-mail to its contact and the operators (side effects: fail open)."""
    from clients.webhooks.services import webhook_send

    client = anomaly.client
    data = {"anomaly_id": str(anomaly.id), "signal": anomaly.signal,
               "subject": anomaly.subject, "detected": anomaly.detected.astimezone(UTC).isoformat(),
               "minute": anomaly.minute.astimezone(UTC).isoformat(), "action": anomaly.action,
               "action_taken": anomaly.action_taken, "evidence": anomaly.evidence,
               "client_id": client.client_id if client else None}
    if client is not None:
        webhook_send(client=client, event_type="anomaly.detected", data=data)
    recipients = list(settings.ANOMALY_ALERT_EMAILS)
    if client is not None and client.contact_email:
        recipients.append(client.contact_email)
    if recipients:
        try:
            send_mail(subject=f"Anomaly: {anomaly.get_signal_display()} ({anomaly.subject})",
                      message=(f"{anomaly.get_signal_display()} on {anomaly.subject} at "
                               f"{anomaly.minute.astimezone(UTC):%Y-%m-%d %H:%M} UTC.\n"
                               f"Action: {anomaly.action_taken}.\nEvidence: {anomaly.evidence}"),
                      from_email=None, recipient_list=recipients, fail_silently=False)
        except Exception:  # noqa: BLE001
            log.warning("anomaly e-mail failed", extra={"anomaly": str(anomaly.id)})


def anomaly_set_status(*, anomaly: Anomaly, status: str, actor: Any = None) -> Anomaly:
    with transaction.atomic():
        anomaly.status = status
        anomaly.handled_by = actor_label(actor)[:150]
        anomaly.save(update_fields=["status", "handled_by"])
        audit_record(event=f"anomaly.{status}", actor=actor_label(actor), subject=anomaly.subject,
                     details={"anomaly": str(anomaly.id), "signal": anomaly.signal})
    return anomaly


def anomaly_undo(*, anomaly: Anomaly, actor: Any = None) -> str:
    """Reverse the action taken: resume a suspended key, lift a tightened or floored limit."""
    if anomaly.action_undone is not None or anomaly.action == Action.ALERT:
        return "nothing to undo"
    done = "nothing to undo"
    with transaction.atomic():
        if anomaly.action == Action.SUSPEND and anomaly.key is not None and anomaly.action_taken == "key suspended":
            from keys.models import ApiKeyStatus
            from keys.services import api_key_resume

            anomaly.key.refresh_from_db()
            if anomaly.key.status == ApiKeyStatus.SUSPENDED:
                api_key_resume(key=anomaly.key, actor=actor)
                done = "key resumed"
        else:
            subject = _limit_subject(anomaly)
            baseline = Baseline.objects.filter(subject=subject).first() if subject else None
            if baseline is not None:
                baseline.floored = False
                baseline.tightened_limit = baseline.tightened_until = None
                baseline_refresh(baseline, note=f"anomaly {anomaly.id} undone")
                done = f"limit back to {baseline.effective_limit}/min"
        anomaly.action_undone = timezone.now()
        anomaly.handled_by = actor_label(actor)[:150]
        anomaly.save(update_fields=["action_undone", "handled_by"])
        audit_record(event="anomaly.action_undone", actor=actor_label(actor), subject=anomaly.subject,
                     details={"anomaly": str(anomaly.id), "action": anomaly.action, "result": done})
    return done
