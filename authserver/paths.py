"""Rotating path prefixes: one derivation for this server's own endpoints and for the resource
servers' public aliases (docs/rotating-paths.md).

A prefix is a function of a key and a time window: the first 16 characters of the lower-case,
unpadded base32 of ``HMAC-SHA256(key, "<label>|<window>")``, where ``window`` is
``floor(unix time / window_seconds)``. 16 base32 characters carry 80 bits: not guessable, and
short enough for a URL. The previous and the next window's prefixes are accepted besides the
current one, so a clock a little off on either side, and a URL learnt just before a boundary,
keep working for one more window. The resource-server kit (``rs/``) holds a copy of
:func:`prefix` and a test proves the two agree (tests/test_rs_kit_parity.py).

Paths are defence in depth: they raise the cost of scanning and of using a leaked URL, and they
never replace authentication (docs/security.md, "Path rotation: what it does and doesn't").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

PREFIX_LENGTH = 16

# The clock every window computation reads; tests replace it (monkeypatch ``paths.now``).
now: Callable[[], float] = time.time


def window_of(timestamp: float, window_seconds: int) -> int:
    return int(timestamp // window_seconds)


def prefix(key: bytes, label: str, window: int) -> str:
    mac = hmac.new(key, f"{label}|{window}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:PREFIX_LENGTH]


def current_window(window_seconds: int) -> int:
    return window_of(now(), window_seconds)


def accepted_prefixes(key: bytes, label: str, window_seconds: int) -> tuple[str, str, str]:
    """The previous, current and next window's prefixes, in that order."""
    w = current_window(window_seconds)
    return prefix(key, label, w - 1), prefix(key, label, w), prefix(key, label, w + 1)


def window_bounds(window: int, window_seconds: int) -> tuple[int, int]:
    """Where a window starts and ends (unix seconds; the end is the next window's start)."""
    return window * window_seconds, (window + 1) * window_seconds
