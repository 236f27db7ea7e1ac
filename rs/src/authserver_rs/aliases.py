"""Rotating path aliases (C6): the first path segment must be this window's alias (or an adjacent one).

The derivation key comes from ``POST <path_key_endpoint>`` (authenticated as the resource server);
aliases are derived locally per window (:mod:`authserver_rs.paths`), so checking costs an HMAC and
no round trip. With ``per_client`` the alias is derived from ``"rs|<client_id>"`` and is checked
against the introspected client. An alias that matches nothing makes the kit fetch the key again,
at most every ``key_refetch_interval`` seconds (a rotated key takes effect; probes can't make it
hammer the server), and then answers a bare 404.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from authserver_rs import paths
from authserver_rs.endpoints import EndpointDirectory
from authserver_rs.errors import NotFound, Unavailable


class FetchNeeded(Exception):
    """The check needs the key fetched (an async caller retries in a worker thread)."""


@dataclass(frozen=True)
class PathKey:
    rotating: bool
    key: bytes = b""
    version: int = 0
    window_seconds: int = 86400
    per_client: bool = False


@dataclass(frozen=True)
class Routed:
    """A request path after its alias: ``rest`` is what the application sees."""

    alias: str | None
    rest: str
    per_client: bool = False


class PathAliases:
    def __init__(self, endpoints: EndpointDirectory, client: httpx.Client, *, refetch_interval: float,
                 clock: Callable[[], float], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._endpoints = endpoints
        self._client = client
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._key: PathKey | None = None
        self._fetched_at = float("-inf")
        self.fetches = 0

    def key(self, *, fetch: bool = True) -> PathKey:
        key = self._key
        if key is not None:
            return key
        if not fetch:
            raise FetchNeeded()
        with self._lock:
            if self._key is None:
                self._key = self._fetch()
            return self._key

    def _fetch(self) -> PathKey:
        url = self._endpoints.get().path_key
        if not url:
            raise Unavailable("no path_key_endpoint")
        self._fetched_at = self._monotonic()
        self.fetches += 1
        try:
            response = self._client.post(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
            if not body.get("rotating"):
                return PathKey(rotating=False)
            raw = str(body["key"])
            return PathKey(rotating=True, key=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)),
                           version=int(body.get("version", 0)), window_seconds=int(body["window_seconds"]),
                           per_client=bool(body.get("per_client")))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise Unavailable("path key unavailable") from exc

    def _refetched(self, fetch: bool) -> bool:
        """Fetch the key again if the last fetch is old enough; whether it changed."""
        with self._lock:
            if self._monotonic() - self._fetched_at < self._refetch_interval:
                return False
            if not fetch:
                raise FetchNeeded()
            old = self._key
            try:
                self._key = self._fetch()
            except Unavailable:
                return False
            return self._key != old

    def _matches(self, alias: str, label: str) -> bool:
        key = self.key()
        return alias in paths.accepted(key.key, label, key.window_seconds, self._clock())

    def route(self, path: str, *, fetch: bool = True) -> Routed:
        """Strip and check the alias (raises NotFound); per-client aliases are checked later.

        ``fetch=False``: raise FetchNeeded instead of calling the server (never blocks).
        """
        key = self.key(fetch=fetch)
        if not key.rotating:
            return Routed(None, path)
        segment, slash, tail = path.removeprefix("/").partition("/")
        if not paths.well_formed(segment):
            raise NotFound()
        rest = "/" + tail
        if key.per_client:
            return Routed(segment, rest, per_client=True)
        if self._matches(segment, "rs") or (self._refetched(fetch) and self._matches(segment, "rs")):
            return Routed(segment, rest)
        raise NotFound()

    def check_client(self, routed: Routed, client_id: str, *, fetch: bool = True) -> None:
        if not routed.per_client or routed.alias is None:
            return
        label = f"rs|{client_id}"
        if not (self._matches(routed.alias, label)
                or (self._refetched(fetch) and self._matches(routed.alias, label))):
            raise NotFound()
