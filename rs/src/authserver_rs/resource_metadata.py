"""RFC 9728 protected-resource metadata: this API's document, served and named in every refusal.

The document comes from the authorization server (``GET resource_metadata_endpoint``, authenticated
as the resource server, like introspection): ``resource`` (this API's audience),
``authorization_servers``, ``bearer_methods_supported``, ``scopes_supported``, ``resource_name``.
The kit serves it, without a credential, at ``/.well-known/oauth-protected-resource`` and at the
§3.1 path-inserted URL of the audience (``https://h/mcp`` -> ``https://h/.well-known/oauth-protected-resource/mcp``),
and names that URL in ``WWW-Authenticate: Bearer resource_metadata="…"`` (§5.1), which is how an
MCP client finds the authorization server from a 401.

Cached for ``metadata_max_age``; a failed fetch keeps serving the last document and is retried at
most every ``key_refetch_interval`` seconds, so unauthenticated probes can't make the kit hammer the
server. Without any document the well-known URLs answer 503 (fail closed) and refusals simply
don't name it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from authserver_rs.config import Config
from authserver_rs.endpoints import EndpointDirectory
from authserver_rs.errors import Unavailable

WELL_KNOWN = "/.well-known/oauth-protected-resource"  # RFC 9728 §3 (registered in §8.3)
Document = dict[str, Any]


def well_known_path(resource: str) -> str:
    """The path of the §3.1 metadata URL of ``resource``: the well-known suffix inserted between
    the host and the resource's path (its terminating slash removed)."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return WELL_KNOWN + path + (f"?{parts.query}" if parts.query else "")


def metadata_url(resource: str) -> str:
    """The absolute §3.1 URL of ``resource``'s metadata (what ``resource_metadata=`` names)."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{well_known_path(resource)}"


def is_well_known(path: str) -> bool:
    return path == WELL_KNOWN or path.startswith(WELL_KNOWN + "/")


class ResourceMetadata:
    def __init__(self, config: Config, endpoints: EndpointDirectory, client: httpx.Client,
                 clock: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self._config = config
        self._endpoints = endpoints
        self._client = client
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._document: Document | None = None
        self._body = b""
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self.fetches = 0

    @property
    def enabled(self) -> bool:
        return self._config.resource_metadata

    def cached(self) -> Document | None:
        """The document if one is held and not due (never blocks: the async fast lane)."""
        if self._document is not None and self._clock() < self._fetched_at + self._config.metadata_max_age:
            return self._document
        return None

    def document(self) -> Document | None:
        """The document, fetched when due; None if the server never gave one (or none is configured)."""
        if not self.enabled:
            return None
        found = self.cached()
        if found is not None:
            return found
        with self._lock:
            found = self.cached()
            if found is not None:
                return found
            if self._monotonic() < self._failed_at + self._config.key_refetch_interval:
                return self._document  # a recent failure: the last document (or none), no new request
            try:
                self._store(self._fetch())
            except (Unavailable, httpx.HTTPError, ValueError):
                self._failed_at = self._monotonic()
            return self._document

    def challenge_url(self) -> str | None:
        """What ``WWW-Authenticate: Bearer resource_metadata="…"`` names, if a document is known."""
        found = self.document()
        return metadata_url(found["resource"]) if found is not None else None

    def serves(self, path: str) -> bool:
        """Is ``path`` one of the two URLs the document is served at? (Fetches it if needed.)"""
        found = self.document()
        if found is None:
            raise Unavailable("resource metadata unavailable")
        return path in (WELL_KNOWN, well_known_path(found["resource"]).partition("?")[0])

    @property
    def body(self) -> bytes:
        return self._body

    def _store(self, document: Document) -> None:
        self._document = document
        self._body = json.dumps(document).encode()
        self._fetched_at = self._clock()

    def _fetch(self) -> Document:
        for attempt in (0, 1):
            url = self._endpoints.get(force=attempt == 1).resource_metadata
            if not url:
                raise Unavailable("no resource_metadata_endpoint")
            self.fetches += 1
            response = self._client.get(url, headers={"Accept": "application/json"})
            if response.status_code == 404 and attempt == 0:
                continue  # the endpoint rotated away: look the endpoints up again, once
            response.raise_for_status()
            document = response.json()
            if not (isinstance(document, dict) and isinstance(document.get("resource"), str)
                    and urlsplit(document["resource"]).scheme in ("https", "http")):
                raise ValueError("not an RFC 9728 document")
            return document
        raise AssertionError("unreachable")  # pragma: no cover
