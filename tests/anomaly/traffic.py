"""A synthetic traffic generator: Poisson counts per minute around a slowly varying rate, with jitter."""

from __future__ import annotations

import math
import random


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 500:  # normal approximation for big rates
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def steady(minutes: int, *, rate: float = 60.0, jitter: float = 0.15, daily_swing: float = 0.2,
           seed: int = 1) -> list[int]:
    """Per-minute counts: ``rate`` with a daily swing (±``daily_swing``), multiplicative jitter, Poisson noise."""
    rng = random.Random(seed)
    out = []
    for t in range(minutes):
        day = 1 + daily_swing * math.sin(2 * math.pi * t / 1440)
        noisy = rate * day * math.exp(rng.gauss(0, jitter))
        out.append(poisson(rng, noisy))
    return out


def spike(minutes: int, *, rate: float = 60.0, factor: float = 10.0, seed: int = 2) -> list[int]:
    rng = random.Random(seed)
    return [poisson(rng, rate * factor) for _ in range(minutes)]
