# ruff: noqa: S105 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""The bench's data set: sizes, and every credential derived deterministically from (seed, kind, i).

The seeding process and the load generator derive the same plaintexts independently, so nothing
secret is written to disk except the short sample files the load generator reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

from authserver import credentials  # the one credential format; no settings needed

RS_AUDIENCE = "https://api.bench.test"
OTHER_AUDIENCE = "https://other.bench.test"
REDIRECT_URI = "https://app.bench.test/callback"
SCOPE = "bench.read"
CODE_VERIFIER = "bench-verifier-" + "v" * 40  # 55 chars: RFC 7636 allows 43-128
API_KEY_PREFIX = "ak"


@dataclass
class Sizes:
    live: int = 100_000
    expired: int = 100_000
    clients: int = 1_000
    keys: int = 10_000
    codes: int = 40_000  # single-use authorization codes for the exchange scenario
    refresh: int = 40_000  # single-use refresh tokens for the refresh scenario
    scale_small: int = 10_000
    scale_large: int = 1_000_000
    cleanup: int = 1_000_000
    dot_tokens: int = 100_000
    hot_set: int = 1_000
    sample: int = 100_000  # cold requests prepared per scenario (each used once per round)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


SMALL = Sizes(live=3_000, expired=3_000, clients=50, keys=300, codes=4_000, refresh=4_000, scale_small=1_000,
              scale_large=20_000, cleanup=20_000, dot_tokens=2_000, hot_set=200, sample=6_000)


@dataclass
class Plan:
    sizes: Sizes
    seed: str = "bench-1"
    extra: dict[str, str] = field(default_factory=dict)


def credential(seed: str, kind: str, namespace: str, i: int) -> str:
    """A well-formed credential of ``kind`` (our format: 43 base62 chars + CRC32 checksum)."""
    raw = hashlib.sha256(f"{seed}|{namespace}|{i}".encode()).digest()
    return credentials.assemble(kind, credentials.base62(int.from_bytes(raw, "big"), credentials.RANDOM_LENGTH))


digest = credentials.digest


def garbage(seed: str, i: int) -> str:
    """Malformed: right shape, wrong checksum (costs no query), or plainly wrong."""
    good = credential(seed, "at", "garbage", i)
    if i % 3 == 0:
        return good[:-1] + ("A" if good[-1] != "A" else "B")
    if i % 3 == 1:
        return "at_" + "x" * (i % 40)
    return "not-a-token-" + str(i)


# Namespaces (each a separate sequence of credentials).
LIVE = "live"            # live access tokens, audience RS_AUDIENCE
EXPIRED = "expired"      # expired access tokens
REVOKED = "revoked"      # revoked access tokens (rows deleted, as DOT's revoke does)
COMPROMISED = "compromised"  # tokens of a client whose credentials were revoked (compromise response)
KEY = "key"              # API keys; i % 10: 0 expired, 1 revoked, else active
CLIENT_SECRET = "client-secret"
CODE = "code"
REFRESH = "refresh"
SCALE = "scale"          # scale-test tokens
CLEANUP = "cleanup"      # expired tokens for the cleanup test


def key_state(i: int) -> str:
    return {0: "expired", 1: "revoked"}.get(i % 10, "active")
