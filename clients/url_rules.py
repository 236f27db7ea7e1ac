"""The shape every URL a client registers must have (webhook URLs, a resource server's public
URL): one parse, one set of refusals. Redirect URIs have their own, stricter rules (clients.redirects)."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit


def absolute_url(url: str, *, max_length: int) -> tuple[SplitResult | None, str | None]:
    """``(parts, None)`` for an absolute URL with a host, no credentials, spaces or control
    characters, a valid port and no fragment, at most ``max_length`` characters; else
    ``(None, why)``. The scheme is the caller's rule."""
    if len(url) > max_length:
        return None, f"at most {max_length} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None, "not a valid URL"
    if any(ch.isspace() or ord(ch) < 32 for ch in url) or not parts.hostname or "@" in parts.netloc or parts.fragment:
        return None, "an absolute URL with a host, without credentials, spaces or a fragment"
    return parts, None


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
