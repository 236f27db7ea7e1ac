"""The answer cache: bounded LRU keyed by the SHA-256 hex of the presented credential.

The key is what the authorization server's revocation events carry (``digest``), so an event
drops exactly the entry it names; the credential itself is never stored. Every operation holds
one lock and never blocks on I/O, so the cache is safe from threads and from coroutines alike.

``epoch`` counts everything that may have made a cached answer stale (each applied event, each
flush, each loss of the stream). An introspection records it before asking the server and stores
its answer only if it is unchanged (:meth:`AnswerCache.put_if_unchanged`): an answer fetched before
a revocation whose event arrived while the answer was on its way is used once and never cached.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

Answer = dict[str, Any]


def digest(credential: str) -> str:
    """SHA-256 hex of the credential: the server's ``credentials.digest`` and its events' ``digest``."""
    return hashlib.sha256(credential.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    answer: Answer
    deadline: float
    # The caller address the answer was given for, when the answer depends on it (API-key
    # allowlists, negative answers); None when it doesn't (access tokens).
    client_ip: str | None
    bound: bool


class AnswerCache:
    def __init__(self, *, max_entries: int) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, client_ip: str | None, now: float, positive_allowed: bool) -> Answer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.deadline <= now:
                del self._entries[key]
                return None
            if entry.bound and entry.client_ip != client_ip:
                return None
            if entry.answer.get("active") and not positive_allowed:
                return None
            self._entries.move_to_end(key)
            return entry.answer

    def put_if_unchanged(self, key: str, entry: Entry, *, epoch: int) -> bool:
        """Store ``entry`` unless anything was revoked or flushed since ``epoch`` was read."""
        with self._lock:
            if self.epoch != epoch:
                return False
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return True

    def flush(self) -> None:
        with self._lock:
            self._entries.clear()
            self.epoch += 1

    def invalidate(self) -> None:
        """Something may have been missed (the stream dropped): answers in flight must not be stored."""
        with self._lock:
            self.epoch += 1

    def drop_digest(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self.epoch += 1

    def drop_client(self, client_id: str) -> None:
        """Drop every entry whose answer names ``client_id`` (compromise response, deletion)."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.answer.get("client_id") == client_id]:
                del self._entries[key]
            self.epoch += 1
