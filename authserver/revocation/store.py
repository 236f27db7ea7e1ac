"""Where the revocation generation is shared between processes: Redis, or a file.

Redis when ``REDIS_URL`` is configured; otherwise a file in the data directory, which every process
of an embedded single-machine deployment shares. Only :mod:`authserver.revocation` reads or bumps
it, at most every ``CHECK_INTERVAL`` per process.

Besides the number, the store holds the *open changes*: a change bumps the generation and opens a
marker before its transaction commits, and bumps again and closes the marker after. While any
marker is open (and younger than ``PENDING_SECONDS``) the state is *unsettled*: no process stores
or serves a cached answer, because one read from the database now may be about to go stale
without a bump anyone could see (the bump after commit can fail: a full disk, a dead Redis).
Docs: decisions/0011-one-revocation-component.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

REDIS_KEY = "authserver:revocation-generation"
REDIS_PENDING_KEY = "authserver:revocation-pending"
# How long an open marker holds: longer than any web transaction runs between its bump and its
# commit. A marker outlives its change only if the change's transaction rolled back or its bump
# after commit failed; until then every process answers from the database (slower, never stale).
PENDING_SECONDS = 10.0


class GenerationUnavailable(Exception):
    """The shared generation can't be read or written (Redis down, disk full, read-only data
    directory, a malformed file that can't be repaired). The message never holds a credential."""


def fresh_base() -> int:
    """Where a new or emptied store starts counting: the clock, in microseconds.

    A generation must never be handed out twice. A Redis restarted without its data (or a
    deleted file) would otherwise count again from 1, and once revocations had bumped it back to
    a value some worker saw before the loss, answers that worker cached under that value would be
    served again. Bumps never outrun a microsecond clock, so this starts above every earlier value.
    """
    return time.time_ns() // 1000


@dataclass
class State:
    """The generation and the open changes (marker -> unix deadline)."""

    generation: int
    pending: dict[str, float] = field(default_factory=dict)

    def settled(self, now: float) -> bool:
        return not any(deadline > now for deadline in self.pending.values())


def _parse(text: str) -> State:
    """The file's content: ``{"generation": N, "pending": {...}}`` or (older releases) a bare number."""
    data = json.loads(text)
    if isinstance(data, int) and not isinstance(data, bool):
        return State(data)
    if not isinstance(data, dict) or type(data.get("generation")) is not int:
        raise ValueError("malformed revocation generation file")
    if not isinstance(data.get("pending"), dict):
        raise ValueError("malformed revocation generation file")
    pending = {str(k): float(v) for k, v in data["pending"].items()}
    return State(data["generation"], pending)


class SharedGeneration:
    """The shared counter. Every method raises :class:`GenerationUnavailable` if the store can't be used."""

    def __init__(self) -> None:
        self._redis: Any = None
        self._path: Path | None = None

    def forget_connections(self) -> None:
        self._redis = None
        self._path = None

    def _client(self) -> Any:
        if self._redis is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: a dead Redis must fail this call at once (the caller fails closed).
            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5,
                                               retry=Retry(NoBackoff(), 0))
        return self._redis

    def _file(self) -> Path:
        if self._path is None:
            run = Path(settings.DATA_DIR) / "run"
            run.mkdir(mode=0o700, exist_ok=True)
            self._path = run / "revocation-generation"
        return self._path

    def read(self) -> int:
        return self.state().generation

    def state(self) -> State:
        """The generation and whether it is settled (no change open). One round trip, or one file read."""
        try:
            if settings.REDIS_URL:
                return self._redis_state()
            return self._file_state()
        except GenerationUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the cause: the generation is unknown
            raise GenerationUnavailable(type(exc).__name__) from exc

    def bump(self, *, opening: str | None = None, closing: str | None = None) -> int:
        """Move the generation on; open the marker ``opening`` and/or close ``closing``."""
        try:
            if settings.REDIS_URL:
                return self._redis_bump(opening, closing)
            return self._file_update(lambda state: _bumped(state, opening, closing)).generation
        except GenerationUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - not written: the caller must not report success
            raise GenerationUnavailable(type(exc).__name__) from exc

    def clear_pending_for_tests(self) -> None:
        with contextlib.suppress(Exception):
            if settings.REDIS_URL:
                self._client().delete(REDIS_PENDING_KEY)
            elif self._file().exists():
                self._file_update(lambda state: State(state.generation))

    # -- Redis ------------------------------------------------------------------------------------
    def _redis_state(self) -> State:
        client = self._client()
        now = time.time()
        pipe = client.pipeline(transaction=False)
        pipe.get(REDIS_KEY)
        pipe.zcount(REDIS_PENDING_KEY, f"({now}", "+inf")
        value, open_changes = pipe.execute()
        if value is None:  # a new or emptied store: start above anything handed out before
            client.set(REDIS_KEY, fresh_base(), nx=True)
            value = client.get(REDIS_KEY)
        return State(int(value), {"open": now + 1} if open_changes else {})

    def _redis_bump(self, opening: str | None, closing: str | None) -> int:
        now = time.time()
        pipe = self._client().pipeline(transaction=True)
        pipe.set(REDIS_KEY, fresh_base(), nx=True)
        pipe.incr(REDIS_KEY)
        if opening:
            pipe.zadd(REDIS_PENDING_KEY, {opening: now + PENDING_SECONDS})
        if closing:
            pipe.zrem(REDIS_PENDING_KEY, closing)
        pipe.zremrangebyscore(REDIS_PENDING_KEY, "-inf", now)
        return int(pipe.execute()[1])

    # -- File -------------------------------------------------------------------------------------
    def _file_state(self) -> State:
        try:
            return _parse(self._file().read_text())
        except (FileNotFoundError, ValueError):
            return self._file_update(lambda state: state)  # made or repaired under the lock

    def _file_update(self, change: Callable[[State], State]) -> State:
        path = self._file()
        # One writer at a time (fcntl lock). The new state goes to a temporary file, flushed to
        # disk, then renamed over the old one: a full disk or a read-only directory fails the
        # write and leaves the previous file whole; readers never see a partial one.
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = _parse(path.read_text())
            except FileNotFoundError:
                state = State(fresh_base())
            except ValueError:
                # Malformed: start again above every earlier value, unsettled for PENDING_SECONDS
                # (the lost content may have held an open change's marker).
                state = State(fresh_base(), {"repair": time.time() + PENDING_SECONDS})
            state = change(state)
            tmp = path.with_suffix(".tmp")
            try:
                with open(tmp, "w") as out:
                    out.write(json.dumps({"generation": state.generation, "pending": state.pending}))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            return state


def _bumped(state: State, opening: str | None, closing: str | None) -> State:
    now = time.time()
    pending = {k: v for k, v in state.pending.items() if v > now and k != closing}
    if opening:
        pending[opening] = now + PENDING_SECONDS
    return State(state.generation + 1, pending)
