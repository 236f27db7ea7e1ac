"""The counter store on Redis (``REDIS_URL`` set): shared by every process of every host.

Key names are those earlier releases used (``authserver:usage``, ``authserver:quota:<id>``,
...), so a rolling deploy keeps its counts. Sliding windows (``authserver:sw:<name>``, a hash of
bucket -> hits) replaced the fixed ``authserver:rl:<name>:<window>`` keys: an upgrade forgets at
most one window of rate-limit counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

import redis
from redis.typing import EncodableT, FieldT

from authserver.counters.store import Batch, CountersUnavailable, Hit, Tally, buckets, sliding

PREFIX = "authserver:"
LIMITS = PREFIX + "limits"

# One sliding window, atomically (authserver.counters.store.sliding): drop buckets older than the
# oldest counted one, sum the rest, record the hit only if the sum is under the limit (ARGV[3],
# -1: no limit). Returns {recorded (0/1), bucket, hits, bucket, hits, ...} after the hit.
_SLIDE = """
local fields = redis.call('HGETALL', KEYS[1])
local current, oldest, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stale, live, total = {}, {}, 0
for i = 1, #fields, 2 do
  local bucket = tonumber(fields[i])
  if bucket < oldest or bucket > current then
    stale[#stale + 1] = fields[i]
  else
    total = total + tonumber(fields[i + 1])
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local recorded = 0
if limit < 0 or total < limit then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  recorded = 1
end
local out = {recorded}
fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields do out[#out + 1] = fields[i] end
return out
"""


def _text(value: bytes | str) -> str:
    """A reply as text: bytes without ``decode_responses`` (how the client is made), typed as either."""
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    def __init__(self, url: str) -> None:
        # Short timeouts: a hung Redis must turn into CountersUnavailable (a 503 or the
        # per-process fallback) within a second, not hold a request thread.
        self.redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._slide = self.redis.register_script(_SLIDE)

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

    def drain(self, tally: Tally) -> Batch:
        batch = Batch()
        suffix = uuid.uuid4().hex
        for source in tally.names:
            tmp = f"{PREFIX}{source}:draining:{suffix}"
            try:
                self.redis.rename(PREFIX + source, tmp)  # atomic: new counts go to a fresh key
            except redis.RedisError:  # the key does not exist: nothing to drain
                continue
            if source == tally.counts:
                for field, value in self.redis.hgetall(tmp).items():
                    name, _, bucket = _text(field).rpartition("|")
                    batch.count(name, int(bucket), int(value))
            elif source == tally.latest:
                for field, value in self.redis.hgetall(tmp).items():
                    ts, _, text = _text(value).partition("|")
                    batch.latest[_text(field)] = (float(ts), text)
            else:
                for member in self.redis.smembers(tmp):
                    a, _, b = _text(member).partition("|")
                    batch.pairs.add((a, b))
            self.redis.delete(tmp)
        return batch

    def consume(self, name: str, *, baseline: int | None, period: int | None, now: float,
                limit: int | None = None) -> Hit:
        # One MULTI/EXEC: the total and the window move together, in one round trip.
        pipe = self.redis.pipeline(transaction=True)
        if baseline is not None:
            total_key = f"{PREFIX}quota:{name}"
            pipe.set(total_key, baseline, nx=True)  # a lost counter restarts from the rolled-up count
            pipe.incr(total_key)
        if period:
            current, oldest = buckets(now, period)
            self._slide(keys=[f"{PREFIX}sw:{name}"], args=[current, oldest, -1 if limit is None else limit,
                                                           period + 5], client=pipe)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        total = int(results[1]) if baseline is not None else None
        if not period:
            return Hit(total, None, None)
        reply = results[-1]
        live = {int(reply[i]): int(reply[i + 1]) for i in range(1, len(reply), 2)}
        count, reset = sliding(live, now=now, period=period, limit=limit)
        return Hit(total, count if reply[0] else count + 1, reset)

    def window_buckets(self, name: str, *, period: int, now: float) -> dict[int, int]:
        try:
            fields = self.redis.hgetall(f"{PREFIX}sw:{name}")
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        current, oldest = buckets(now, period)
        live = {int(b): int(n) for b, n in fields.items()}
        return {b: n for b, n in live.items() if oldest <= b <= current}

    def total(self, name: str) -> int | None:
        value = self.redis.get(f"{PREFIX}quota:{name}")
        return int(value) if value is not None else None

    def window_count(self, name: str, *, period: int, now: float) -> int:
        return sliding(self.window_buckets(name, period=period, now=now), now=now, period=period, limit=None)[0]

    def set_limits(self, limits: Mapping[str, int | None]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        keep: dict[FieldT, EncodableT] = {subject: int(value) for subject, value in limits.items() if value is not None}
        drop = [subject for subject, value in limits.items() if value is None]
        if keep:
            pipe.hset(LIMITS, mapping=keep)
        if drop:
            pipe.hdel(LIMITS, *drop)
        pipe.execute()

    def get_limit(self, subject: str) -> int | None:
        value = self.redis.hget(LIMITS, subject)
        return int(value) if value is not None else None

    def wipe(self, tallies: Iterable[Tally]) -> None:
        patterns = [f"{PREFIX}rl:*", f"{PREFIX}sw:*", f"{PREFIX}quota:*", f"{LIMITS}*"]
        patterns += [f"{PREFIX}{name}*" for tally in tallies for name in tally.names]
        for pattern in patterns:
            keys = list(self.redis.scan_iter(pattern, count=1000))
            if keys:
                self.redis.delete(*keys)
