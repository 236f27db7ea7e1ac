"""What anomaly detection learns from traffic: subscribers to the telemetry events.

Lower layers emit (authserver.events) and never call here; each subscriber receives a batch
(payload -> count) about once a second and adds it to the per-minute traffic counts that the
anomaly job drains. Connected in ``AnomalyConfig.ready``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any, cast

from authserver import events
from authserver.anomaly.detection import key_network
from authserver.anomaly.traffic import count_minute


def _per_client(batch: Counter[Hashable]) -> None:
    """Live access tokens introspected, and token requests (attempts), per client."""
    for client_id, n in batch.items():
        count_minute(f"client:{client_id}", n=n)


def _introspection_inactive(batch: Counter[Hashable]) -> None:
    """Inactive answers per resource server (token fishing) and per presenting network (invalid tokens)."""
    for payload, n in batch.items():
        # Emitted by authserver.introspection.endpoint: (resource server client_id, network or None).
        rs_client_id, network = cast(tuple[str, str | None], payload)
        count_minute(f"fishing:{rs_client_id}", n=n)
        if network:
            count_minute(f"invalid:{network}", n=n)


def _client_auth_failed(batch: Counter[Hashable]) -> None:
    for network, n in batch.items():
        count_minute(f"authfail:{network}", n=n)


def _api_key_verified(batch: Counter[Hashable]) -> None:
    """Verifications per key, and the networks each key is used from (the new-network signal)."""
    for payload, n in batch.items():
        # Emitted by keys.verification: (key id, client IP or None).
        key_id, address = cast(tuple[str, str | None], payload)
        network = key_network(address) if address else None
        count_minute(f"key:{key_id}", pair=(key_id, network) if network else None, n=n)


def _api_key_refused(batch: Counter[Hashable]) -> None:
    for key_id, n in batch.items():
        count_minute(f"revoked:key:{key_id}", n=n)


SUBSCRIPTIONS: tuple[tuple[events.Topic, Any], ...] = (
    (events.token_introspected, _per_client),
    (events.token_requested, _per_client),
    (events.introspection_inactive, _introspection_inactive),
    (events.client_auth_failed, _client_auth_failed),
    (events.api_key_verified, _api_key_verified),
    (events.api_key_refused, _api_key_refused),
)


def connect() -> None:
    for topic, subscriber in SUBSCRIPTIONS:
        topic.subscribe(subscriber)
