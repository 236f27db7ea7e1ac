"""Encryption at rest: key store (file or PKCS#11 HSM), envelope encryption, encrypted fields.

Stable API for the rest of the code (keep it that way: the audit trail depends on it)::

    from authserver.crypto import encrypt, decrypt, DecryptionError

    blob = encrypt("audit.personal", b"alice@example.com", aad=b"audit.event\\0" + event_id.bytes)
    decrypt("audit.personal", blob, aad=b"audit.event\\0" + event_id.bytes)  # -> b"alice@example.com"

``encrypt(purpose: str, plaintext: bytes, aad: bytes) -> bytes``
    AES-256-GCM under the purpose's data key for the current KEK version. ``purpose``: 1-100 of
    ``a-z 0-9 . _ : -`` naming what the data is (one data key per purpose per KEK version);
    ``aad``: the identity of the record the ciphertext belongs to (it is authenticated, not
    stored: pass the same bytes to decrypt). The result records its KEK version.
``decrypt(purpose: str, ciphertext: bytes, aad: bytes) -> bytes``
    Raises :class:`DecryptionError` on any mismatch (other record, purpose, version, tampering).
``reencrypt(purpose, ciphertext, aad) -> bytes | None``
    The same plaintext under the current KEK version (None if already current).
``secret(name: str) -> bytes``
    A server-held secret (HMAC key...) generated once and kept wrapped by the KEK.
``EncryptedTextField`` / ``EncryptedJSONField``
    Model fields; the row identity (model label, field name, primary key) is the AAD. They need
    a primary key known before insert (UUID pk with a default). Prefer them for stored data:
    ``keys rotate`` finds and re-encrypts them automatically. Ciphertexts kept elsewhere
    through ``encrypt()`` are the caller's to re-encrypt (``reencrypt``); until their data key
    row is gone, ``keys retire`` refuses to retire that version.

Key store settings: ``AUTHSERVER_KEYSTORE=file|pkcs11``; file: ``AUTHSERVER_KEYSTORE_FILE``
(default ``<data dir>/keystore.json``); pkcs11: ``AUTHSERVER_PKCS11_MODULE``,
``AUTHSERVER_PKCS11_TOKEN_LABEL``, ``AUTHSERVER_PKCS11_PIN``, ``AUTHSERVER_PKCS11_KEY_LABEL``.
Operations: ``manage.py keys status|rotate|retire VERSION|check``, ``manage.py backup --output
FILE``, ``manage.py restore FILE``.
"""

from authserver.crypto.envelope import decrypt, encrypt, keystore_ready, reencrypt, secret
from authserver.crypto.fields import Ciphertext, EncryptedJSONField, EncryptedTextField
from authserver.crypto.keystore import DecryptionError, KeyStoreError

__all__ = [
    "Ciphertext",
    "DecryptionError",
    "EncryptedJSONField",
    "EncryptedTextField",
    "KeyStoreError",
    "decrypt",
    "encrypt",
    "keystore_ready",
    "reencrypt",
    "secret",
]
