"""Personal data about the current request, for audit events (always stored encrypted)."""

from __future__ import annotations

from typing import Any

from authserver.netaddr import client_address


def request_personal(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    meta = getattr(request, "META", None) or getattr(request, "headers", None) or {}
    return {
        "ip": client_address(meta),
        "user_agent": str(meta.get("HTTP_USER_AGENT", ""))[:300],
    }


def actor_label(actor: Any) -> str:
    """A non-personal reference to whoever acted: ``user:<pk>``, ``cli``, ``api:<client_id>``…"""
    if actor is None:
        return "system"
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) is not None:
        return f"user:{actor.pk}"
    return str(actor)[:200]
