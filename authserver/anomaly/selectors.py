"""Reads for the job and the admin: policies, subjects, traffic around an anomaly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from authserver.anomaly.models import Action, AnomalyPolicy, Signal, TrafficMinute

# Without a configured policy: tighten on volume, alert on everything else.
DEFAULT_ACTIONS: dict[str, str] = {Signal.VOLUME: Action.TIGHTEN}


def action_for(signal: str, client: Any | None) -> str:
    """The configured action for ``signal``: the client's own policy, else the default one, else built in."""
    rows: dict[int | None, str] = {(row["client_id"]): row["action"] for row in
            AnomalyPolicy.objects.filter(signal=signal).values("client_id", "action")}
    if client is not None and client.pk in rows:
        return rows[client.pk]
    if None in rows:
        return rows[None]
    return DEFAULT_ACTIONS.get(signal, Action.ALERT)


def subject_credential(subject: str) -> tuple[Any | None, Any | None]:
    """``(client, key)`` a subject names (``client:``/``rs:`` → client, ``key:`` → key and its client)."""
    from clients.models import Client
    from keys.models import ApiKey

    kind, _, ident = subject.partition(":")
    if kind == "key":
        key = ApiKey.objects.select_related("client").filter(pk=ident).first() if _is_uuid(ident) else None
        return (key.client if key else None), key
    if kind in {"client", "rs"}:
        return Client.objects.filter(client_id=ident).first(), None
    return None, None


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def traffic_around(series: str, minute: datetime, *, before: int = 60,
                   after: int = 15) -> list[tuple[datetime, int, bool]]:
    """Zero-filled ``(minute, count, flagged)`` of ``series`` from ``before`` minutes ahead of ``minute``."""
    minute = minute.astimezone(UTC).replace(second=0, microsecond=0)
    start, end = minute - timedelta(minutes=before), minute + timedelta(minutes=after)
    rows = {m.astimezone(UTC): (c, f) for m, c, f in TrafficMinute.objects.filter(
        subject=series, minute__gte=start, minute__lte=end).values_list("minute", "count", "flagged")}
    out = []
    at = start
    while at <= end:
        count, flagged = rows.get(at, (0, False))
        out.append((at, count, flagged))
        at += timedelta(minutes=1)
    return out
