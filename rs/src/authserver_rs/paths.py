"""Rotating path aliases: a copy of ``authserver.paths.prefix`` (this package cannot import the
server; tests/test_rs_kit_parity.py in the server's suite proves the two agree).

An alias is the first 16 characters of the lower-case, unpadded base32 of
``HMAC-SHA256(key, "<label>|<window>")``, with ``window = floor(unix time / window_seconds)``.
The previous, current and next windows' aliases are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX_LENGTH = 16
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def window_of(timestamp: float, window_seconds: int) -> int:
    return int(timestamp // window_seconds)


def prefix(key: bytes, label: str, window: int) -> str:
    mac = hmac.new(key, f"{label}|{window}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:PREFIX_LENGTH]


def accepted(key: bytes, label: str, window_seconds: int, now: float) -> tuple[str, str, str]:
    """The previous, current and next window's aliases, in that order."""
    w = window_of(now, window_seconds)
    return prefix(key, label, w - 1), prefix(key, label, w), prefix(key, label, w + 1)


def well_formed(segment: str) -> bool:
    """Could ``segment`` be an alias at all (checked before any work)?"""
    return len(segment) == PREFIX_LENGTH and all(c in _ALPHABET for c in segment)
