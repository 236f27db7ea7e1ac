"""Reads on discovery capabilities: never a plaintext, never a digest shown."""

from __future__ import annotations

from authserver import credentials
from clients.discovery.models import DiscoveryCapability

KIND = credentials.DISCOVERY_CAPABILITY


def capability_live(*, value: str) -> DiscoveryCapability | None:
    """The live capability ``value`` names; ``None`` for a malformed, unknown or revoked one.

    The shape and checksum are checked first (no query for garbage or a typo)."""
    if not credentials.is_well_formed(value, KIND):
        return None
    return (DiscoveryCapability.objects.filter(digest=credentials.digest(value), revoked_at__isnull=True)
            .select_related("client").first())


def capability_current(*, client_id: str) -> DiscoveryCapability | None:
    return DiscoveryCapability.objects.filter(client__client_id=client_id, revoked_at__isnull=True).first()
