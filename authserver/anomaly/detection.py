"""Pure functions over per-minute series: baselines, effective limits, volume anomalies.

No database, no clock: the job feeds them rows, the traffic-generator tests feed them synthetic
minutes (:class:`Detector` replays the job's decisions minute by minute).

The baseline of a credential is taken over the trailing ``window`` minutes (zero-filled since it
was first seen, anomalous minutes left out): the mean, median, an EWMA and its deviation, and a
high quantile (``quantile``, default the 99th percentile). Then:

* effective limit = clamp(``limit_factor`` × max(high quantile, mean), ``floor``, ``ceiling``), or
  ``default_limit`` while there are fewer than ``warmup`` minutes of history (new credentials);
  a pinned limit replaces it, a tightened limit (anomaly action) caps it for a while;
* volume anomaly: after the warm-up, a minute above max(``volume_min``, ``volume_factor`` × high
  quantile).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from authserver.netaddr import network_of


@dataclass(frozen=True)
class Config:
    window: int = 120
    warmup: int = 30
    quantile: float = 0.99
    ewma_alpha: float = 0.1
    limit_factor: float = 4.0
    floor: int = 60
    ceiling: int = 60_000
    default_limit: int = 600
    volume_factor: float = 3.0
    volume_min: int = 30
    tighten_factor: float = 1.5

    @classmethod
    def from_settings(cls) -> Config:
        from django.conf import settings

        return cls(
            window=settings.ANOMALY_WINDOW_MINUTES, warmup=settings.ANOMALY_WARMUP_MINUTES,
            quantile=settings.ANOMALY_QUANTILE, ewma_alpha=settings.ANOMALY_EWMA_ALPHA,
            limit_factor=settings.ANOMALY_LIMIT_FACTOR, floor=settings.ANOMALY_LIMIT_FLOOR,
            ceiling=settings.ANOMALY_LIMIT_CEILING, default_limit=settings.ANOMALY_DEFAULT_LIMIT,
            volume_factor=settings.ANOMALY_VOLUME_FACTOR, volume_min=settings.ANOMALY_VOLUME_MIN,
            tighten_factor=settings.ANOMALY_TIGHTEN_FACTOR,
        )


@dataclass(frozen=True)
class Stats:
    samples: int = 0
    mean: float = 0.0
    median: float = 0.0
    high: float = 0.0
    ewma: float = 0.0
    ewm_std: float = 0.0


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def stats(history: Sequence[int], cfg: Config) -> Stats:
    """Statistics of a per-minute history (oldest first)."""
    if not history:
        return Stats()
    ordered = sorted(history)
    ewma = float(history[0])
    ewvar = 0.0
    for value in history[1:]:
        delta = value - ewma
        ewma += cfg.ewma_alpha * delta
        ewvar = (1 - cfg.ewma_alpha) * (ewvar + cfg.ewma_alpha * delta * delta)
    return Stats(samples=len(history), mean=sum(history) / len(history), median=quantile(ordered, 0.5),
                 high=quantile(ordered, cfg.quantile), ewma=ewma, ewm_std=math.sqrt(ewvar))


def computed_limit(st: Stats, cfg: Config) -> int:
    if st.samples < cfg.warmup:
        return cfg.default_limit
    return max(cfg.floor, min(cfg.ceiling, math.ceil(cfg.limit_factor * max(st.high, st.mean))))


def effective_limit(st: Stats, cfg: Config, *, pinned: int | None = None, tightened: int | None = None,
                    floored: bool = False) -> int:
    if floored:
        return cfg.floor
    limit = pinned if pinned else computed_limit(st, cfg)
    if tightened is not None:
        limit = min(limit, tightened)
    return max(1, limit)


def tightened_limit(st: Stats, cfg: Config) -> int:
    """The limit an anomaly 'tighten' action sets: the baseline times a small factor."""
    if st.samples == 0:
        return cfg.floor
    return max(1, math.ceil(cfg.tighten_factor * max(st.high, st.mean, 1.0)))


def volume_threshold(st: Stats, cfg: Config) -> float | None:
    if st.samples < cfg.warmup:
        return None
    return max(float(cfg.volume_min), cfg.volume_factor * max(st.high, st.mean))


def is_volume_anomaly(count: int, st: Stats, cfg: Config) -> bool:
    threshold = volume_threshold(st, cfg)
    return threshold is not None and count > threshold


def zero_filled(counts: dict[int, tuple[int, bool]], *, start: int, end: int) -> list[int]:
    """Counts for the minutes ``start`` ≤ m < ``end`` (unix seconds), zeros where nothing was counted,
    flagged minutes left out."""
    out = []
    for minute in range(start, end, 60):
        count, flagged = counts.get(minute, (0, False))
        if not flagged:
            out.append(count)
    return out


@dataclass
class Detector:
    """The job's decision for one series, minute by minute, in memory (traffic-generator tests)."""

    cfg: Config = field(default_factory=Config)
    history: deque[int] = field(default_factory=deque)

    def step(self, count: int) -> tuple[int, bool]:
        """Feed one complete minute: returns (effective limit in force for it, anomalous?)."""
        st = stats(list(self.history), self.cfg)
        anomalous = is_volume_anomaly(count, st, self.cfg)
        limit = effective_limit(st, self.cfg)
        if not anomalous:
            self.history.append(count)
            while len(self.history) > self.cfg.window:
                self.history.popleft()
        return limit, anomalous

    def run(self, counts: Iterable[int]) -> list[tuple[int, bool]]:
        return [self.step(c) for c in counts]


def key_network(ip: str | None) -> str | None:
    """The unit of "a new network" for API keys: the IPv4 /24 or IPv6 /48 (mapped IPv4 as IPv4)."""
    return network_of(ip, ipv4_prefix=24, ipv6_prefix=48)


def network_digest(network: str, key: bytes) -> str:
    """A keyed, non-reversible name for a network (what is stored instead of the address)."""
    return hmac.new(key, network.encode(), hashlib.sha256).hexdigest()[:32]
