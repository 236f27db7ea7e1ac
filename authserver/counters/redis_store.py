"""The counter store on Redis (``REDIS_URL`` set): shared by every process of every host.

Key names are those earlier releases used (``authserver:usage``, ``authserver:quota:<id>``,
...), so a rolling deploy keeps its counts. Sliding windows (``authserver:sw:<name>``, a hash of
bucket -> hits) replaced the fixed ``authserver:rl:<name>:<window>`` keys: an upgrade forgets at
most one window of rate-limit counts.
"""

from __future__ import annotations

import functools
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from authserver.counters.store import (
    SUB_WINDOWS,
    Batch,
    CountersUnavailable,
    Hit,
    QuotaTake,
    Tally,
    WindowHit,
    buckets,
    sliding,
)

PREFIX = "authserver:"
LIMITS = PREFIX + "limits"
QUOTA = PREFIX + "quotalease:"  # a hash per key: used, lease, nonce
LEGACY_QUOTA = PREFIX + "quota:"  # earlier releases' running totals, read once when a counter starts

# KEYS: the registry of pending batches, then (live key, pending key) pairs. ARGV: the batch id.
# One script: the renames and the registration happen together or not at all.
_STAGE = """
local moved = 0
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
    moved = 1
  end
end
if moved == 1 then redis.call('SADD', KEYS[1], ARGV[1]) end
return moved
"""

# KEYS: the counter. ARGV: the quota, a fresh nonce. Returns {used, nonce} ('' when counted).
_TAKE = """
local v = redis.call('HMGET', KEYS[1], 'used', 'lease', 'nonce')
if not v[3] then
  redis.call('HSET', KEYS[1], 'nonce', ARGV[2])
  return {0, ARGV[2]}
end
if not v[1] then return {0, v[3]} end
local used, lease = tonumber(v[1]), tonumber(v[2])
if used < lease then return {redis.call('HINCRBY', KEYS[1], 'used', 1), ''} end
if lease >= tonumber(ARGV[1]) then return {used + 1, ''} end
return {0, v[3]}
"""

# KEYS: the counter, the legacy total. ARGV: nonce, start, leased. Returns 1 if granted.
_GRANT = """
local v = redis.call('HMGET', KEYS[1], 'used', 'lease', 'nonce')
if v[3] ~= ARGV[1] then return 0 end
local leased = tonumber(ARGV[3])
if not v[1] then
  local used = tonumber(ARGV[2])
  local legacy = redis.call('GET', KEYS[2])
  if legacy and tonumber(legacy) > used then used = tonumber(legacy) end
  redis.call('HSET', KEYS[1], 'used', used, 'lease', leased)
elseif leased > tonumber(v[2]) then
  redis.call('HSET', KEYS[1], 'lease', leased)
end
return 1
"""

# Sliding windows, atomically (authserver.counters.store.sliding, ported: the reply is a few
# integers, not every bucket). KEYS: one hash (bucket -> hits) per window, then the running total
# when ARGV[3] (its baseline) is not ''. ARGV: now, SUB_WINDOWS, baseline, then six per window:
# record (1: count a hit, 0: only read), current bucket, oldest bucket, limit (-1: none), TTL, period.
# A recorded window drops buckets outside [oldest, current] and records the hit only if the rest
# sum to under the limit. Returns {recorded, count, reset} per window, then the total if any.
# Lua numbers are doubles, as Python's floats: (b + 1) * width + period is the same double on both
# sides, and is ceiled here (Redis would truncate a fraction in the reply).
_WINDOWS = """
local now, subs = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local windows = (#ARGV - 3) / 6
for w = 1, windows do
  local a = 3 + (w - 1) * 6
  local record, current, oldest = ARGV[a + 1] == '1', tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local limit, period = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 6])
  local fields = redis.call('HGETALL', KEYS[w])
  local stale, live, order, total = {}, {}, {}, 0
  for i = 1, #fields, 2 do
    local bucket, hits = tonumber(fields[i]), tonumber(fields[i + 1])
    if bucket < oldest or bucket > current then
      stale[#stale + 1] = fields[i]
    elseif hits > 0 then
      live[bucket] = hits
      order[#order + 1] = bucket
      total = total + hits
    end
  end
  local recorded = 0
  if record then
    if #stale > 0 then redis.call('HDEL', KEYS[w], unpack(stale)) end
    if limit < 0 or total < limit then
      redis.call('HINCRBY', KEYS[w], ARGV[a + 2], 1)
      redis.call('EXPIRE', KEYS[w], tonumber(ARGV[a + 5]))
      if live[current] == nil then
        live[current] = 0
        order[#order + 1] = current
      end
      live[current] = live[current] + 1
      total = total + 1
      recorded = 1
    end
  end
  table.sort(order)
  local reset = math.ceil(now + period)
  local running, width = total, period / subs
  for _, bucket in ipairs(order) do
    running = running - live[bucket]
    if limit < 0 or total < limit or running < limit then
      reset = math.ceil((bucket + 1) * width + period)
      break
    end
  end
  if record and recorded == 0 then total = total + 1 end
  out[#out + 1] = recorded
  out[#out + 1] = total
  out[#out + 1] = reset
end
if ARGV[3] ~= '' then
  local key = KEYS[windows + 1]
  redis.call('SET', key, ARGV[3], 'NX')
  out[#out + 1] = redis.call('INCR', key)
end
return out
"""


def _text(value: bytes | str) -> str:
    """A reply as text: bytes without ``decode_responses`` (how the client is made), typed as either."""
    return value.decode() if isinstance(value, bytes) else value


# After a connection failure, calls fail at once for this long instead of each waiting on a dead
# Redis (a circuit breaker); the first call after it is the probe.
BREAKER_SECONDS = 1.0

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """Fail fast while the breaker is open; a connection failure opens it; a success forgets it."""

    @functools.wraps(method)
    def guarded(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        if self.down():
            raise CountersUnavailable("redis unavailable (recent failure)")
        try:
            result = method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.failed_at = time.monotonic()
            raise CountersUnavailable(type(exc).__name__) from exc
        except CountersUnavailable:
            self.failed_at = time.monotonic()
            raise
        self.failed_at = None
        return result

    return guarded  # type: ignore[return-value]


class RedisStore:
    def __init__(self, url: str) -> None:
        # Short timeouts and no retries: a dead or hung Redis must turn into CountersUnavailable (a
        # 503 or the per-process fallback) within half a second, not hold a request thread (redis-py
        # retries three times with back-off by default: seconds per call).
        self.redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                          retry=Retry(NoBackoff(), 0))
        self.failed_at: float | None = None  # monotonic time of the last connection failure, until a success
        self._stage = self.redis.register_script(_STAGE)
        self._take = self.redis.register_script(_TAKE)
        self._grant = self.redis.register_script(_GRANT)
        self._windows = self.redis.register_script(_WINDOWS)

    def down(self) -> bool:
        """Did a call fail less than BREAKER_SECONDS ago? Then calls fail without a round trip."""
        failed_at = self.failed_at
        return failed_at is not None and time.monotonic() - failed_at < BREAKER_SECONDS

    @_guarded
    def add(self, tally: Tally, batch: Batch) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for (name, bucket), n in batch.counts.items():
            pipe.hincrby(PREFIX + tally.counts, f"{name}|{bucket}", n)
        if tally.latest:
            for name, (ts, text) in batch.latest.items():
                pipe.hset(PREFIX + tally.latest, name, f"{ts}|{text}")
        if tally.pairs and batch.pairs:
            pipe.sadd(PREFIX + tally.pairs, *(f"{a}|{b}" for a, b in batch.pairs))
        pipe.execute()

    @_guarded
    def drain(self, tally: Tally) -> Batch:
        batch = Batch()
        suffix = uuid.uuid4().hex
        for source in tally.names:
            tmp = f"{PREFIX}{source}:draining:{suffix}"
            try:
                self.redis.rename(PREFIX + source, tmp)  # atomic: new counts go to a fresh key
            except redis.RedisError:  # the key does not exist: nothing to drain
                continue
            self._read(tally, source, tmp, batch)
            self.redis.delete(tmp)
        return batch

    def _read(self, tally: Tally, source: str, key: str, batch: Batch) -> None:
        """Add what ``key`` holds (a copy of the tally's ``source``) to ``batch``."""
        if source == tally.counts:
            for field, value in self.redis.hgetall(key).items():
                name, _, bucket = _text(field).rpartition("|")
                batch.count(name, int(bucket), int(value))
        elif source == tally.latest:
            for field, value in self.redis.hgetall(key).items():
                ts, _, text = _text(value).partition("|")
                batch.latest[_text(field)] = (float(ts), text)
        else:
            for member in self.redis.smembers(key):
                a, _, b = _text(member).partition("|")
                batch.pairs.add((a, b))

    # -- Exactly-once drains: stage, record in the database, settle ---------------------------------
    def _registry(self, tally: Tally) -> str:
        return f"{PREFIX}{tally.counts}:pending"

    @_guarded
    def stage(self, tally: Tally) -> None:
        batch_id = f"{time.time_ns():020d}-{secrets.token_hex(6)}"
        keys = [self._registry(tally)]
        for source in tally.names:
            keys += [PREFIX + source, f"{PREFIX}{source}:pending:{batch_id}"]
        self._stage(keys=keys, args=[batch_id])

    @_guarded
    def pending(self, tally: Tally) -> dict[str, Batch]:
        batches: dict[str, Batch] = {}
        for batch_id in sorted(_text(member) for member in self.redis.smembers(self._registry(tally))):
            batch = batches[batch_id] = Batch()
            for source in tally.names:
                self._read(tally, source, f"{PREFIX}{source}:pending:{batch_id}", batch)
        return batches

    @_guarded
    def settle(self, tally: Tally, batch_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(*(f"{PREFIX}{source}:pending:{batch_id}" for source in tally.names))
        pipe.srem(self._registry(tally), batch_id)
        pipe.execute()

    # -- Quotas counted inside leased blocks -----------------------------------------------------------
    @_guarded
    def quota_take(self, name: str, *, quota: int) -> QuotaTake:
        try:
            used, nonce = self._take(keys=[QUOTA + name], args=[quota, secrets.token_hex(8)])
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        return QuotaTake(int(used), _text(nonce) or None)

    @_guarded
    def quota_grant(self, name: str, *, nonce: str, start: int, leased: int) -> bool:
        try:
            return bool(self._grant(keys=[QUOTA + name, LEGACY_QUOTA + name], args=[nonce, start, leased]))
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc

    @_guarded
    def consume(self, name: str, *, baseline: int | None, period: int | None, now: float,
                limit: int | None = None) -> Hit:
        # One EVALSHA: the total and the window move together, in one round trip.
        hits = [WindowHit(name, period, limit)] if period else []
        reply = self._run_windows(hits, now=now, total=None if baseline is None else (name, baseline))
        total = int(reply[-1]) if baseline is not None else None
        if not period:
            return Hit(total, None, None)
        return Hit(total, int(reply[1]), int(reply[2]))

    @_guarded
    def windows(self, hits: Sequence[WindowHit], *, now: float) -> list[Hit]:
        reply = self._run_windows(hits, now=now, total=None)
        return [Hit(None, int(reply[i + 1]), int(reply[i + 2])) for i in range(0, 3 * len(hits), 3)]

    def _run_windows(self, hits: Sequence[WindowHit], *, now: float, total: tuple[str, int] | None) -> list[Any]:
        """The _WINDOWS script on ``hits`` (and the running total ``(name, baseline)``): its reply.
        Calling the Script itself sends one EVALSHA (and loads the script only on NOSCRIPT); a
        pipeline would ask SCRIPT EXISTS first, on every call."""
        keys: list[str] = [f"{PREFIX}sw:{hit.name}" for hit in hits]
        args: list[EncodableT] = [now, SUB_WINDOWS, "" if total is None else total[1]]
        for hit in hits:
            current, oldest = buckets(now, hit.period)
            args += [1 if hit.record else 0, current, oldest, -1 if hit.limit is None else hit.limit,
                     hit.period + 5, hit.period]
        if total is not None:
            keys.append(f"{PREFIX}quota:{total[0]}")
        try:
            return list(self._windows(keys=keys, args=args))
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc

    @_guarded
    def window_buckets(self, name: str, *, period: int, now: float) -> dict[int, int]:
        try:
            fields = self.redis.hgetall(f"{PREFIX}sw:{name}")
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        current, oldest = buckets(now, period)
        live = {int(b): int(n) for b, n in fields.items()}
        return {b: n for b, n in live.items() if oldest <= b <= current}

    @_guarded
    def total(self, name: str) -> int | None:
        value = self.redis.get(f"{PREFIX}quota:{name}")
        return int(value) if value is not None else None

    @_guarded
    def window_count(self, name: str, *, period: int, now: float) -> int:
        return sliding(self.window_buckets(name, period=period, now=now), now=now, period=period, limit=None)[0]

    @_guarded
    def set_limits(self, limits: Mapping[str, int | None]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        keep: dict[FieldT, EncodableT] = {subject: int(value) for subject, value in limits.items() if value is not None}
        drop = [subject for subject, value in limits.items() if value is None]
        if keep:
            pipe.hset(LIMITS, mapping=keep)
        if drop:
            pipe.hdel(LIMITS, *drop)
        pipe.execute()

    @_guarded
    def get_limit(self, subject: str) -> int | None:
        value = self.redis.hget(LIMITS, subject)
        return int(value) if value is not None else None

    def wipe(self, tallies: Iterable[Tally]) -> None:
        patterns = [f"{PREFIX}rl:*", f"{PREFIX}sw:*", f"{PREFIX}quota:*", f"{QUOTA}*", f"{LIMITS}*"]
        patterns += [f"{PREFIX}{name}*" for tally in tallies for name in tally.names]
        for pattern in patterns:
            keys = list(self.redis.scan_iter(pattern, count=1000))
            if keys:
                self.redis.delete(*keys)
