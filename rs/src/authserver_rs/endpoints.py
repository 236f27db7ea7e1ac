"""Where the authorization server's endpoints are: explicit, or from a discovery document.

With ``metadata_url`` (the per-client ``/d/dc_…`` capability URL), the RFC 8414 document gives
``introspection_endpoint``, ``revocation_events_endpoint``, ``path_key_endpoint`` and
``resource_metadata_endpoint`` (RFC 9728). In rotating
mode it also gives ``endpoints_valid_until`` (the last moment its URLs are accepted); the document
is fetched again ``metadata_refresh_margin`` seconds before that, or every ``metadata_max_age``
seconds without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from authserver_rs.config import Config
from authserver_rs.errors import Unavailable


@dataclass(frozen=True)
class Endpoints:
    introspection: str
    revocation_events: str | None
    path_key: str | None
    refresh_at: float  # when to fetch the document again (inf: explicit endpoints)
    resource_metadata: str | None = None  # RFC 9728 document of this resource server (issue 16)


class EndpointDirectory:
    def __init__(self, config: Config, client: httpx.Client, clock: Callable[[], float]) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Endpoints | None = None
        if not config.metadata_url:
            assert config.introspection_endpoint is not None  # Config checks one of the two is set
            self._current = Endpoints(config.introspection_endpoint, config.revocation_events_endpoint,
                                      config.path_key_endpoint, float("inf"), config.resource_metadata_endpoint)

    def fresh(self) -> Endpoints | None:
        """The endpoints if no fetch is due (never blocks: the async path's fast lane)."""
        current = self._current
        return current if current is not None and self._clock() < current.refresh_at else None

    def get(self, *, force: bool = False) -> Endpoints:
        current = self.fresh()
        if current is not None and not force:
            return current
        with self._lock:
            current = self._current
            if current is not None and not force and self._clock() < current.refresh_at:
                return current
            if not self._config.metadata_url:
                assert current is not None
                return current
            try:
                self._current = self._fetch(self._config.metadata_url)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                if current is not None and self._clock() < current.refresh_at + self._config.metadata_refresh_margin:
                    return current  # still inside its validity: keep using it, try again next call
                raise Unavailable("metadata unavailable") from exc
            return self._current

    def _fetch(self, url: str) -> Endpoints:
        response = self._client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        now = self._clock()
        valid_until = document.get("endpoints_valid_until")
        if isinstance(valid_until, int | float):
            refresh_at = max(now + 1.0, float(valid_until) - self._config.metadata_refresh_margin)
        else:
            refresh_at = now + self._config.metadata_max_age
        introspection = document["introspection_endpoint"]
        if not isinstance(introspection, str):
            raise ValueError("introspection_endpoint")
        return Endpoints(introspection, document.get("revocation_events_endpoint"),
                         document.get("path_key_endpoint"), refresh_at,
                         document.get("resource_metadata_endpoint") or self._config.resource_metadata_endpoint)
