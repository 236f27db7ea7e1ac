"""The audit trail's use of the key store (authserver.crypto).

* Personal data is encrypted with AES-256-GCM under purpose ``audit.personal``; the event id is
  the associated data, so a ciphertext moved to another event fails to decrypt.
* The chain key is a key-store secret (``audit.chain``): the database never holds it, so whoever
  can write the database can't recompute a consistent chain after editing it.
"""

from __future__ import annotations

from authserver import crypto

PURPOSE_PERSONAL = "audit.personal"
PURPOSE_CHAIN = "audit.chain"


def _aad(record_id: int) -> bytes:
    return f"audit.AuditEvent.personal\0{record_id}".encode()


def seal(plaintext: bytes, *, record_id: int) -> bytes:
    return crypto.encrypt(PURPOSE_PERSONAL, plaintext, _aad(record_id))


def unseal(ciphertext: bytes, *, record_id: int) -> bytes:
    return crypto.decrypt(PURPOSE_PERSONAL, ciphertext, _aad(record_id))


def reseal(ciphertext: bytes, *, record_id: int) -> bytes | None:
    """The same plaintext under the current key version (None if already current)."""
    return crypto.reencrypt(PURPOSE_PERSONAL, ciphertext, _aad(record_id))


def chain_key() -> bytes:
    return crypto.secret(PURPOSE_CHAIN)
