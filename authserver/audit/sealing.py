"""The audit trail's use of the key store: the chain key and encryption of personal data.

Personal data is encrypted with AES-256-GCM under purpose ``audit-personal``; the event id is
the associated data, so a ciphertext moved to another event fails to decrypt. The chain key is a
secret of purpose ``audit-chain``. Both come from the key store (authserver.crypto) when it is
installed.
"""

from __future__ import annotations

import importlib.util
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PURPOSE_PERSONAL = "audit-personal"
PURPOSE_CHAIN = "audit-chain"


def _aad(record_id: int) -> bytes:
    return f"audit.AuditEvent.personal:{record_id}".encode()


def _crypto():  # type: ignore[no-untyped-def]
    from django.apps import apps

    if not apps.is_installed("authserver.crypto") or importlib.util.find_spec("authserver.crypto") is None:
        return None
    from authserver import crypto

    return crypto if hasattr(crypto, "encrypt") else None


def _local_key(name: str) -> bytes:
    import base64
    import hashlib

    from authserver.datadir import read_or_create_secret

    return hashlib.sha256(base64.urlsafe_b64decode(read_or_create_secret(name) + "==")).digest()


def seal(plaintext: bytes, *, record_id: int) -> bytes:
    crypto = _crypto()
    if crypto is not None:
        return crypto.encrypt(PURPOSE_PERSONAL, plaintext, _aad(record_id))
    nonce = os.urandom(12)
    return b"L1" + nonce + AESGCM(_local_key("audit-personal-key")).encrypt(nonce, plaintext, _aad(record_id))


def unseal(ciphertext: bytes, *, record_id: int) -> bytes:
    crypto = _crypto()
    if crypto is not None and not ciphertext.startswith(b"L1"):
        return crypto.decrypt(PURPOSE_PERSONAL, ciphertext, _aad(record_id))
    return AESGCM(_local_key("audit-personal-key")).decrypt(ciphertext[2:14], ciphertext[14:], _aad(record_id))


def chain_key() -> bytes:
    crypto = _crypto()
    if crypto is not None and hasattr(crypto, "secret"):
        return crypto.secret(PURPOSE_CHAIN)
    return _local_key("audit-chain-key")
