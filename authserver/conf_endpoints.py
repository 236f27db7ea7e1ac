"""Where this server's own endpoints live (issue 15, docs/endpoints.md): the OAuth endpoints' paths
(``fixed`` or ``rotating`` per time window) and the management API's path.

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from authserver.conf_parsers import _int, _one_of, var

API_PATH_RE = re.compile(r"[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*")


def _api_path(name: str, raw: str) -> str:
    """``api/v1`` or one random-looking segment: path segments of URL-safe characters, no slashes at the ends."""
    value = raw.strip().strip("/")
    if not API_PATH_RE.fullmatch(value) or any(part in {".", ".."} for part in value.split("/")):
        raise ImproperlyConfigured(f"{name} must be a URL path such as api/v1 (letters, digits, . _ ~ - and /), "
                                   f"not {raw!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class EndpointsConfig:
    """``fixed``: the OAuth endpoints at /oauth/<x> and RFC 8414 at the well-known path. ``rotating``:
    at /<prefix>/<x>, the prefix derived per window (authserver.paths, authserver.endpoints), and the
    metadata only at per-client discovery URLs."""

    mode: str = var("AUTHSERVER_ENDPOINTS", "fixed", _one_of("fixed", "rotating"), flat="ENDPOINTS")
    window_seconds: int = var("AUTHSERVER_ENDPOINTS_WINDOW_SECONDS", 86400, _int(1), flat="ENDPOINTS_WINDOW_SECONDS")
    # The management API's path; "" means generated once in the data directory (authserver.datadir.api_path).
    api_path: str = var("AUTHSERVER_API_PATH", "", _api_path)
