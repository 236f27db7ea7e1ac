"""The audit trail's use of the key store (authserver.crypto).

* Personal data is encrypted with AES-256-GCM under purpose ``audit.personal``; the event id is
  the associated data, so a ciphertext moved to another event fails to decrypt.
* The chain key is a key-store secret (``audit.chain``): the database never holds it, so whoever
  can write the database can't recompute a consistent chain after editing it.
* The checkpoint signing key (Ed25519) is derived from the key-store secret ``audit.checkpoint``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authserver import crypto

PURPOSE_PERSONAL = "audit.personal"
PURPOSE_CHAIN = "audit.chain"
PURPOSE_CHECKPOINT = "audit.checkpoint"


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


def checkpoint_signing_key() -> Ed25519PrivateKey:
    """The Ed25519 key that signs checkpoints (authserver.audit.checkpoints).

    Its 32-byte seed is derived (HKDF-SHA256, RFC 5869) from a held key-store secret, so the private
    key is kept like every other server secret: wrapped by the KEK (file or HSM), re-wrapped, never
    changed, by KEK rotation, and never in the database in clear.
    """
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"authserver audit checkpoint ed25519 v1").derive(crypto.secret(PURPOSE_CHECKPOINT))
    return Ed25519PrivateKey.from_private_bytes(seed)
