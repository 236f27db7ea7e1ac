"""Client-secret hashing through DOT's ``CLIENT_SECRET_HASHER`` seam.

DOT stores client secrets with a Django password hasher; the default (PBKDF2, 1,000,000
iterations) costs ~230 ms of CPU per check and caps the token endpoint at a few requests per
second. Our secrets are minted by the server with 256 bits of entropy, so a single SHA-256 is as
strong as any stretching (ASVS 5.0 §6.5.2) and costs about a microsecond. Users' passwords never
use this hasher: Argon2 is first in ``PASSWORD_HASHERS``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from django.contrib.auth.hashers import BasePasswordHasher
from django.utils.translation import gettext_noop as _

from authserver import credentials

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


class CredentialHasher(BasePasswordHasher):
    algorithm = "authserver_sha256"

    def salt(self) -> str:
        return ""  # 256-bit random inputs need no salt; a deterministic digest can be indexed.

    def encode(self, password: str, salt: str) -> str:
        if not credentials.is_well_formed(password, credentials.CLIENT_SECRET):
            # Only server-minted secrets may be stored this way: a human-chosen password hashed
            # with SHA-256 would be crackable.
            raise ValueError("CredentialHasher only hashes server-generated client secrets")
        return f"{self.algorithm}${credentials.digest(password)}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, _sep, hashed = encoded.partition("$")
        return {"algorithm": algorithm, "hash": hashed, "salt": ""}

    def verify(self, password: str, encoded: str) -> bool:
        if not credentials.is_well_formed(password, credentials.CLIENT_SECRET):
            return False
        return secrets.compare_digest(encoded, f"{self.algorithm}${credentials.digest(password)}")

    def safe_summary(self, encoded: str) -> dict[str | StrPromise, Any]:
        return {_("algorithm"): self.algorithm, _("hash"): "********"}

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        return None
