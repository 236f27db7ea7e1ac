"""Telemetry events: how a lower layer says "this happened" without calling up.

Verification and the token endpoint see traffic that policy layers above them learn from
(authserver.anomaly counts it per minute). They must neither import those layers nor pay for
them: a hot path only *emits*, which appends the event's payload to a bounded in-memory queue
(``deque.append``, atomic and implemented in C). A daemon thread hands each topic's pending
payloads, counted, to the topic's subscribers about once a second; subscribers connect in their
``AppConfig.ready``.

Telemetry is a side effect and fails open: a full queue drops the oldest payloads, and a
subscriber that raises is logged and skipped. Nothing that grants access may depend on it.
What is pending when the process exits is delivered then (``atexit``), so a short command loses
no access line.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Hashable

log = logging.getLogger("authserver.events")

DELIVERY_INTERVAL = 1.0

Subscriber = Callable[[Counter[Hashable]], None]


class Topic:
    """One kind of event. ``emit(payload)`` is the hot path's only cost."""

    def __init__(self, name: str, *, maxlen: int = 200_000) -> None:
        self.name = name
        self._pending: deque[Hashable] = deque(maxlen=maxlen)
        self.emit: Callable[[Hashable], None] = self._pending.append
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        _ensure_delivery_thread()

    def deliver(self) -> None:
        """Hand what is pending, counted by payload, to every subscriber."""
        batch: Counter[Hashable] = Counter()
        pop = self._pending.popleft
        try:
            while True:
                batch[pop()] += 1
        except IndexError:
            pass
        if not batch:
            return
        for subscriber in self._subscribers:
            try:
                subscriber(batch)
            except Exception:  # noqa: BLE001 - telemetry never stops the server
                log.warning("event subscriber failed", extra={"topic": self.name}, exc_info=True)

    def discard(self) -> None:
        self._pending.clear()


# A live access token was introspected: its client's id.
token_introspected = Topic("token.introspected")
# An introspection answered inactive: (resource server client_id, network of the presenter).
introspection_inactive = Topic("introspection.inactive")
# A client authentication failed at the token endpoint or introspection: the caller's network.
client_auth_failed = Topic("client.auth_failed")
# A client asked the token endpoint for a token (attempts, refused or not): its client_id.
token_requested = Topic("token.requested")
# An API key verified: (key id, the end caller's address as reported, or None).
api_key_verified = Topic("api_key.verified")
# A revoked or suspended API key was presented: its id.
api_key_refused = Topic("api_key.refused")

# A request was answered (authserver.handlers, both stacks): (method, route name or None, status,
# seconds, the view's ``request.telemetry`` or None, (REMOTE_ADDR, X-Forwarded-For, Forwarded) for
# netaddr.client_address to read off the request path, request id). ``telemetry`` is
# what the view chose to record: (client id, resource server client id, outcome), any of them
# None; never a credential. Read by authserver.observability (access line and metrics).
request_served = Topic("request.served")
# The fail-closed boundary refused a request because a dependency is down: "database", "redis",
# "counter_store" or "revocation_store".
dependency_failed = Topic("dependency.failed")
# A rate-limit policy refused a request: the policy's name.
rate_limit_refused = Topic("ratelimit.refused")

TOPICS = (token_introspected, introspection_inactive, client_auth_failed, token_requested, api_key_verified,
          api_key_refused, request_served, dependency_failed, rate_limit_refused)


def deliver_all() -> None:
    """Deliver every topic now (the delivery thread, and code that reads what subscribers counted)."""
    for topic in TOPICS:
        topic.deliver()


def discard_all_for_tests() -> None:
    for topic in TOPICS:
        topic.discard()


_thread_lock = threading.Lock()
_thread: dict[str, object] = {"pid": None}


def _ensure_delivery_thread() -> None:
    # One per process: a forked web worker starts its own (threads don't survive fork).
    with _thread_lock:
        if _thread["pid"] == os.getpid():
            return
        _thread["pid"] = os.getpid()
        threading.Thread(target=_deliver_forever, name="authserver-events", daemon=True).start()


def _deliver_forever() -> None:
    stop = threading.Event()
    while not stop.wait(DELIVERY_INTERVAL):
        deliver_all()


def _after_fork_in_child() -> None:
    # The parent's lock may have been held by another thread at fork time: take a fresh one.
    global _thread_lock
    _thread_lock = threading.Lock()
    _thread["pid"] = None
    if any(topic._subscribers for topic in TOPICS):
        _ensure_delivery_thread()


os.register_at_fork(after_in_child=_after_fork_in_child)
# Registered after logging's own exit hook, so it runs before logging shuts down (LIFO).
atexit.register(deliver_all)
