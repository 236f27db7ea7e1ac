"""When ``serve`` starts a dead worker or beat again: exponential back-off, reset by a stable run.

A child that dies is started again after 1 s, then 2, 4, 8… up to 60 s between attempts while it
keeps dying soon after each start; one that ran for a minute before dying counts as healthy again
and is restarted after 1 s. A crash loop therefore costs one start a minute at most, and a rare
crash costs a second of jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
STABLE_AFTER = 60.0


@dataclass
class Backoff:
    first: float = FIRST_DELAY
    ceiling: float = MAX_DELAY
    stable_after: float = STABLE_AFTER
    attempts: int = 0  # restarts since the child last ran stably

    def next_delay(self, ran_for: float) -> float:
        """The wait before the next start of a child that died after running ``ran_for`` seconds."""
        if ran_for >= self.stable_after:
            self.attempts = 0
        delay: float = min(self.ceiling, self.first * 2.0**self.attempts)
        self.attempts += 1
        return delay
