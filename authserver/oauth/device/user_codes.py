"""User codes (RFC 8628 §6.1): what a person reads on one screen and types on another.

Eight characters from 20 consonants (no vowels: no words; no look-alikes such as 0/O or 1/I),
shown as ``XXXX-XXXX``: 20**8 ≈ 2**34.6 codes. That is weak next to our 256-bit credentials, which
is why a code lives minutes (AUTHSERVER_DEVICE_CODE_SECONDS), works once, and entering codes is
rate-limited per user and per network (``device.user``; §5.1). Input is case- and
hyphen-insensitive (§6.1: "characters... that are not in the character set" such as dashes are
ignored), and only the digest of the normalised code is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

ALPHABET: Final = "BCDFGHJKLMNPQRSTVWXZ"
LENGTH: Final = 8
# What a form may carry before we even normalise it: a code with separators and spaces, not a page.
MAX_INPUT: Final = 32


def generate() -> str:
    """A fresh user code, displayed form (``XXXX-XXXX``)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise(value: object) -> str | None:
    """The eight code characters of ``value``, upper-cased, without separators; None if it cannot
    be a user code (pure CPU: nothing is looked up for a malformed entry)."""
    if not isinstance(value, str) or len(value) > MAX_INPUT:
        return None
    kept = "".join(ch for ch in value.upper() if ch not in "- \t")
    if len(kept) != LENGTH or any(ch not in ALPHABET for ch in kept):
        return None
    return kept


def display(normalised: str) -> str:
    return f"{normalised[:4]}-{normalised[4:]}"


def digest(normalised: str) -> str:
    """What is stored and looked up: SHA-256 of the normalised code, domain-separated from the
    credential digests so no user code digest can ever equal another credential's."""
    return hashlib.sha256(f"device-user-code:{normalised}".encode("ascii")).hexdigest()
