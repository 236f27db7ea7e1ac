"""The one credential format (docs/decisions/0001-one-credential-format.md).

``<type>_<43 base62 chars: 256 random bits><6 base62 chars: CRC32 checksum>``, like GitHub's
tokens: the type prefix lets secret scanners and our log redaction find a leaked credential, and
the checksum lets every entry point reject a typo or garbage with no cache or database work.

The checksum is an integrity check, not an authenticator: anyone can compute it. What makes a
credential valid is its SHA-256 digest being present in the database (docs/decisions/0002-hash-only-at-rest.md).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Final

from django.conf import settings

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH: Final = 43  # 43 * log2(62) = 256.03 bits
CHECKSUM_LENGTH: Final = 6  # 62**6 > 2**32
BODY_LENGTH: Final = RANDOM_LENGTH + CHECKSUM_LENGTH

ACCESS_TOKEN: Final = "at"
REFRESH_TOKEN: Final = "rt"
CLIENT_SECRET: Final = "cs"
AUTHORIZATION_CODE: Final = "ac"
DISCOVERY_CAPABILITY: Final = "dc"  # the per-client discovery URL /d/<dc_…> (clients.discovery)
DEVICE_CODE: Final = "dvc"  # RFC 8628 device_code (authserver.oauth.device)
INITIAL_ACCESS_TOKEN: Final = "iat"  # RFC 7591 §3: lets its holder register a client (clients.registration)
REGISTRATION_ACCESS_TOKEN: Final = "rat"  # RFC 7592 §3: manages one registered client


def api_key_prefix() -> str:
    return settings.API_KEY_PREFIX


def known_types() -> tuple[str, ...]:
    return (ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, AUTHORIZATION_CODE, DISCOVERY_CAPABILITY, DEVICE_CODE,
            INITIAL_ACCESS_TOKEN, REGISTRATION_ACCESS_TOKEN, api_key_prefix())


_BODY_RE: Final = re.compile(rf"[0-9A-Za-z]{{{BODY_LENGTH}}}")
_PREFIX_RE: Final = re.compile(r"[a-z][a-z0-9]{0,15}")
# What our log redaction masks: any of our prefixes followed by a full body.
# No trailing \b: a credential glued to more characters (a typo, a concatenation) is masked too.
# No leading \b either: a credential glued after a letter, digit, "_" or a %-escape
# ("code%3Dac_…", "Bearer%20at_…") is masked too. Over-masking a log line is the safe error.
CREDENTIAL_PATTERN: Final = re.compile(rf"([a-z][a-z0-9]{{0,15}})_[0-9A-Za-z]{{{BODY_LENGTH}}}")


def base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


def _checksum(prefix: str, random_part: str) -> str:
    return base62(zlib.crc32(f"{prefix}_{random_part}".encode("ascii")), CHECKSUM_LENGTH)


def mint(kind: str) -> str:
    """A fresh credential of ``kind`` with 256 bits from the OS CSPRNG."""
    if not _PREFIX_RE.fullmatch(kind):
        raise ValueError("credential type must be lowercase alphanumeric")
    return assemble(kind, "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH)))


def assemble(kind: str, random_part: str) -> str:
    """``<kind>_<random_part><checksum>``: the credential format around a given random part."""
    return f"{kind}_{random_part}{_checksum(kind, random_part)}"


def is_well_formed(value: object, kind: str | None = None) -> bool:
    """True if ``value`` has our shape and checksum (and type, if given). Pure CPU, no I/O.

    Length is checked first, so a megabyte of garbage costs one ``len``.
    """
    if not isinstance(value, str):
        return False
    prefix, sep, body = value.partition("_")
    if not sep or len(body) != BODY_LENGTH or len(prefix) > 16:
        return False
    if kind is not None and prefix != kind:
        return False
    if not _PREFIX_RE.fullmatch(prefix) or not _BODY_RE.fullmatch(body):
        return False
    return secrets.compare_digest(body[RANDOM_LENGTH:], _checksum(prefix, body[:RANDOM_LENGTH]))


def credential_type(value: str) -> str | None:
    """The type prefix of a well-formed credential, else None."""
    return value.partition("_")[0] if is_well_formed(value) else None


def digest(value: str) -> str:
    """The one-way digest stored at rest: SHA-256, hex.

    A 256-bit random value cannot be brute-forced from its SHA-256, so a slow or salted hash would
    add cost without security (OWASP ASVS 5.0 §6.5.2); this is also what DOT's
    ``token_checksum`` computes, so every credential we store uses one function.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def hint(value: str) -> str:
    """What may be shown after creation: the type and the last four characters."""
    prefix = value.partition("_")[0]
    return f"{prefix}_…{value[-4:]}"


@dataclass(frozen=True)
class ClientSecretGenerator:
    """DOT's ``CLIENT_SECRET_GENERATOR_CLASS`` seam: clients never choose their secret."""

    def hash(self) -> str:  # DOT's generator interface calls it ``hash``
        return mint(CLIENT_SECRET)


def generate_access_token(request: object, refresh_token: bool = False) -> str:
    """oauthlib ``token_generator`` seam (``ACCESS_TOKEN_GENERATOR``)."""
    return mint(ACCESS_TOKEN)


def generate_refresh_token(request: object, refresh_token: bool = True) -> str:
    """oauthlib ``refresh_token_generator`` seam (``REFRESH_TOKEN_GENERATOR``)."""
    return mint(REFRESH_TOKEN)


def generate_authorization_code() -> str:
    return mint(AUTHORIZATION_CODE)
