"""In-process cache of verification answers (introspection's hot path).

Bounded three ways: size (LRU), lifetime (``TTL`` and the credential's own expiry), and the
revocation generation (authserver.generation): an entry stored under an older generation is never
served, nor any entry while the generation or the database can't be confirmed. Callers read
:func:`authserver.generation.cache_trusted` once per request and pass it to :meth:`HotCache.get`.

Live credentials (and successful resource-server authentications) are cached in their own caches.
Credentials known to be unusable (unknown digests, expired or revoked rows) go to ``absent``, a
separate cache under the same rules: a client retrying with a stale token costs no query, and
fishing with made-up tokens can only evict other such entries, never a live one. Nothing becomes
usable again without bumping the generation (a suspended key's resumption does), and no new
credential can have the digest of one presented before it was minted (256 random bits).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

TTL = 30.0


class HotCache:
    def __init__(self, maxsize: int = 50_000, ttl: float = TTL) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()  # serve's workers run threads (gunicorn gthread)

    def get(self, key: str, gen: int | None) -> Any | None:
        """The entry for ``key`` if it was stored under ``gen`` (from ``generation.cache_trusted()``)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_gen, deadline, value = entry
        with self._lock:
            if gen is None or stored_gen != gen or deadline <= time.time():
                self._entries.pop(key, None)
                return None
            if key in self._entries:
                self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any, *, expires_at: float, gen: int | None) -> None:
        """Store ``value`` under the generation read *before* the database was queried."""
        if gen is None:
            return
        with self._lock:
            self._entries[key] = (gen, min(time.time() + self.ttl, expires_at), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


access_tokens = HotCache()
api_keys = HotCache()
# Resource servers authenticated by (client_id, digest of the presented secret): only successes.
resource_servers = HotCache(maxsize=1_000)
# Clients at the token endpoint by client_id: their row and allowed scope names (not a credential).
clients = HotCache(maxsize=10_000)
# Digests of access tokens and API keys known to be unusable (the value says why, for counting).
absent = HotCache(maxsize=50_000)


def clear_all() -> None:
    for cache in (access_tokens, api_keys, resource_servers, clients, absent):
        cache.clear()
