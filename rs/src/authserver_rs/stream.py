"""The revocation consumer: reads the server's event stream (C7, server-sent events) in a thread.

``GET <revocation_events_endpoint>`` authenticated as the resource server; ``Last-Event-ID`` on
every reconnection, so the server replays what was missed. Applying an event: ``reset`` and
``generation`` flush the cache, ``access_token`` / ``refresh_token`` / ``api_key`` drop the entry
with that digest, ``client`` drops every entry whose answer's ``client_id`` matches; anything not
understood flushes (fail safe).

The rule (README, "While the stream is down"): cached positive answers may be served only while
:meth:`RevocationConsumer.healthy` — connected, caught up (the first heartbeat after connecting,
which the server writes after its replay), and something heard within ``stream_grace`` seconds.
Every loss of the stream also bumps the cache's epoch, so no answer fetched across it is stored.
The same thread serves WSGI and ASGI applications: the cache is thread-safe and never blocks.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from authserver_rs.cache import AnswerCache
from authserver_rs.config import Config
from authserver_rs.endpoints import EndpointDirectory
from authserver_rs.errors import Refusal

log = logging.getLogger("authserver_rs.stream")

# A stream that lasted this long ended normally: reconnect without waiting.
LONG_LIVED = 10.0
DIGEST_KINDS = frozenset({"access_token", "refresh_token", "api_key"})


class RevocationConsumer:
    def __init__(self, config: Config, cache: AnswerCache, endpoints: EndpointDirectory, client: httpx.Client,
                 *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._cache = cache
        self._endpoints = endpoints
        self._client = client
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.connected = False
        self.caught_up = False
        self.last_activity = float("-inf")
        self.last_event_id: str | None = None
        self.connections = 0
        self._retry = config.reconnect_min

    # -- the rule ------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """May cached positive answers be served now?"""
        return (self.connected and self.caught_up
                and self._monotonic() - self.last_activity <= self._config.stream_grace)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        thread = self._thread
        if self._closed or (thread is not None and thread.is_alive()):
            return  # every request calls this: no lock on the way
        with self._lock:
            if not self._closed and (self._thread is None or not self._thread.is_alive()):
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="authserver-rs-revocations", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            heard, began = False, time.monotonic()
            try:
                heard = self._consume_once()
            except (httpx.HTTPError, Refusal, OSError) as exc:
                log.warning("revocation stream: %s", type(exc).__name__)
            finally:
                self._lost()
            if heard and time.monotonic() - began >= LONG_LIVED:
                # The server ends streams after a while (AUTHSERVER_REVOCATIONS_MAX_SECONDS): no cached
                # answer is served until the next one is caught up, so come back at once.
                failures = 0
                continue
            failures = 0 if heard else failures + 1
            delay = min(self._config.reconnect_max, self._retry * (2 ** min(failures, 10)))
            self._stop.wait(delay * random.uniform(0.5, 1.0) if failures else self._retry)  # noqa: S311 (jitter)

    def _lost(self) -> None:
        if self.connected:
            log.info("revocation stream lost; serving no cached answers until it is back")
        self.connected = False
        self.caught_up = False
        self._cache.invalidate()

    def _consume_once(self) -> bool:
        endpoints = self._endpoints.get()
        if not endpoints.revocation_events:
            raise Refusal("no revocation_events_endpoint")
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        heard = False
        with self._client.stream("GET", endpoints.revocation_events, headers=headers) as response:
            if response.status_code == 404:
                self._endpoints.get(force=True)  # rotated away: look the URLs up again
            if response.status_code != 200:
                log.warning("revocation stream refused: %s", response.status_code)
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    self._stop.wait(min(float(retry_after), self._config.reconnect_max))
                return False
            self.connected = True
            self.connections += 1
            self.last_activity = self._monotonic()
            for event, data, event_id in self._events(response.iter_lines()):
                heard = True
                if self._stop.is_set():
                    break
                if event is None:  # a comment: the heartbeat, written after the replay
                    self.caught_up = True
                else:
                    self._apply(event, data)
                    if event_id is not None:
                        self.last_event_id = event_id
                # Heard from only once applied: nothing is served from a stale entry in between.
                self.last_activity = self._monotonic()
        return heard

    def _events(self, lines: Iterator[str]) -> Iterator[tuple[str | None, str, str | None]]:
        """(event, data, id) per dispatched event; (None, "", None) per comment line."""
        event, data, event_id = "message", list[str](), None
        for line in lines:
            if line == "":
                if data or event != "message" or event_id is not None:
                    yield event, "\n".join(data), event_id
                event, data, event_id = "message", [], None
                continue
            if line.startswith(":"):
                yield None, "", None
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id" and "\x00" not in value:
                event_id = value
            elif name == "retry" and value.isdigit():
                self._retry = max(self._config.reconnect_min, int(value) / 1000)

    def _apply(self, event: str, data: str) -> None:
        if event == "reset":
            self._cache.flush()
            return
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            payload = None
        if event != "revocation" or not isinstance(payload, dict):
            self._cache.flush()  # not understood: fail safe
            return
        kind = payload.get("kind")
        if kind in DIGEST_KINDS and isinstance(payload.get("digest"), str):
            self._cache.drop_digest(payload["digest"])
        elif kind == "client" and isinstance(payload.get("client_id"), str):
            self._cache.drop_client(payload["client_id"])
        else:  # "generation", or anything this version does not know
            self._cache.flush()
