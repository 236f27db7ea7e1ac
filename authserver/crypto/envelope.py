"""Envelope encryption: AES-256-GCM data keys, wrapped by the key store's KEK, kept in ``DataKey``.

Ciphertext layout (bytes)::

    0x01 | KEK version (4 bytes, big-endian) | nonce (12) | AES-256-GCM ciphertext + tag (16)

The GCM associated data binds the format byte, the KEK version, the purpose and the caller's
``aad`` (the record's identity), so a ciphertext moved to another record, another purpose or
relabelled with another version fails to decrypt. One data key per purpose per KEK version; the
unwrapped keys are cached in process memory (only once their ``DataKey`` row is committed).
"""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from authserver.crypto.backends import get_keystore
from authserver.crypto.keystore import KEY_BYTES, NONCE_BYTES, DecryptionError, KeyStore, KeyStoreError, KeyStoreMissing

FORMAT = 1
HEADER_BYTES = 5
TAG_BYTES = 16
SECRET_PREFIX = "secret:"  # noqa: S105 - a purpose prefix, not a secret
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,99}$")

_cache: dict[tuple[int, str, int], bytes] = {}
_secrets: dict[tuple[int, str], bytes] = {}
_lock = threading.Lock()


def _check_purpose(purpose: str, *, secret: bool = False) -> None:
    if not isinstance(purpose, str) or not _PURPOSE.match(purpose):
        raise ValueError(f"invalid purpose {purpose!r}: 1-100 of a-z 0-9 . _ : - (starting alphanumeric)")
    if not secret and purpose.startswith(SECRET_PREFIX):
        raise ValueError(f"the purpose prefix {SECRET_PREFIX!r} is reserved for held secrets")


def wrap_aad(purpose: str, version: int) -> bytes:
    return b"authserver-datakey\x00" + purpose.encode() + b"\x00" + version.to_bytes(4, "big")


def _data_aad(purpose: str, header: bytes, aad: bytes) -> bytes:
    return b"authserver-envelope\x00" + purpose.encode() + b"\x00" + header + b"\x00" + aad


def _remember(cache: dict, key: tuple, value: bytes) -> None:
    """Cache a key only once the row it came from is surely committed."""

    def store() -> None:
        with _lock:
            cache[key] = value

    if connection.in_atomic_block:
        transaction.on_commit(store)
    else:
        store()


def keystore_ready() -> KeyStore:
    """The key store, creating KEK version 1 only on a fresh install (no data key in the database).

    A missing key store while the database holds wrapped data keys is an error, never a reason
    to generate a new key (which would orphan every ciphertext).
    """
    from authserver.crypto.models import DataKey

    store = get_keystore()
    try:
        if store.versions():
            return store
        problem = f"{store.describe()} holds no key-encryption key"
    except KeyStoreMissing as exc:
        problem = str(exc)
    if DataKey._meta.db_table in connection.introspection.table_names():
        count = DataKey.objects.count()
        if count:
            raise KeyStoreError(
                f"{problem}, but the database holds {count} wrapped data key(s): the key store was lost "
                "or is misconfigured. Restore it from your key backup (or fix AUTHSERVER_KEYSTORE*); "
                "a new key will not be generated because the encrypted data would become unreadable.")
    store.initialize()
    return store


def _data_key(store: KeyStore, purpose: str, version: int, *, create: bool) -> bytes:
    from authserver.crypto.models import DataKey

    cache_key = (id(store), purpose, version)
    key = _cache.get(cache_key)
    if key is not None:
        return key
    aad = wrap_aad(purpose, version)
    row = DataKey.objects.filter(purpose=purpose, kek_version=version).first()
    if row is None:
        if not create:
            raise DecryptionError(f"no data key for {purpose!r} under KEK version {version}")
        key = secrets.token_bytes(KEY_BYTES)
        try:
            with transaction.atomic():
                DataKey.objects.create(purpose=purpose, kek_version=version, wrapped=store.wrap(version, key, aad))
        except IntegrityError:  # another process created it first: use theirs
            row = DataKey.objects.get(purpose=purpose, kek_version=version)
            key = store.unwrap(version, bytes(row.wrapped), aad)
    else:
        key = store.unwrap(version, bytes(row.wrapped), aad)
    _remember(_cache, cache_key, key)
    return key


def ciphertext_version(ciphertext: bytes) -> int:
    """The KEK version a ciphertext was made under (without decrypting it)."""
    if len(ciphertext) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES or ciphertext[0] != FORMAT:
        raise DecryptionError("not an authserver ciphertext (bad format or too short)")
    return int.from_bytes(ciphertext[1:HEADER_BYTES], "big")


def encrypt(purpose: str, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` for ``purpose`` under the current KEK version, bound to ``aad``."""
    _check_purpose(purpose)
    if not isinstance(plaintext, bytes | bytearray) or not isinstance(aad, bytes | bytearray):
        raise TypeError("plaintext and aad must be bytes")
    store = keystore_ready()
    version = store.current_version()
    key = _data_key(store, purpose, version, create=True)
    header = bytes([FORMAT]) + version.to_bytes(4, "big")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, bytes(plaintext), _data_aad(purpose, header, bytes(aad)))


def decrypt(purpose: str, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt what :func:`encrypt` made with the same purpose and aad; DecryptionError otherwise."""
    _check_purpose(purpose)
    ciphertext = bytes(ciphertext)
    version = ciphertext_version(ciphertext)
    store = keystore_ready()
    if version not in store.versions() and version not in store.versions(fresh=True):
        raise DecryptionError(f"KEK version {version} is not in {store.describe()}")
    key = _data_key(store, purpose, version, create=False)
    header, nonce, body = ciphertext[:HEADER_BYTES], ciphertext[HEADER_BYTES:HEADER_BYTES + NONCE_BYTES], \
        ciphertext[HEADER_BYTES + NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, _data_aad(purpose, header, bytes(aad)))
    except InvalidTag:
        raise DecryptionError("ciphertext failed authentication (wrong record, purpose or key, or tampered)") from None


def reencrypt(purpose: str, ciphertext: bytes, aad: bytes) -> bytes | None:
    """A ciphertext under the current KEK version, or None if it already is one."""
    store = keystore_ready()
    if ciphertext_version(ciphertext) == store.current_version():
        return None
    return encrypt(purpose, decrypt(purpose, ciphertext, aad), aad)


def secret(name: str, *, nbytes: int = 48, legacy_file: str | None = None) -> bytes:
    """A server-held secret (HMAC key...), generated once, kept wrapped by the KEK in ``DataKey``.

    ``legacy_file``: the name of a plaintext secret file in the data directory from before the
    key store; on first use its content is adopted (so the secret does not change) and the file
    removed once the wrapped copy is committed.
    """
    from authserver.crypto.models import DataKey

    purpose = SECRET_PREFIX + name
    _check_purpose(purpose, secret=True)
    store = keystore_ready()
    cache_key = (id(store), purpose)
    value = _secrets.get(cache_key)
    if value is not None:
        return value
    versions = store.versions()
    row = (DataKey.objects.filter(purpose=purpose, kek_version__in=versions).order_by("-kek_version").first())
    if row is None:
        if DataKey.objects.filter(purpose=purpose).exists():
            raise KeyStoreError(f"the secret {name!r} is wrapped under a KEK version missing from {store.describe()}")
        legacy = Path(settings.DATA_DIR) / legacy_file if legacy_file else None
        value = legacy.read_bytes().strip() if legacy and legacy.is_file() else None
        value = value or secrets.token_urlsafe(nbytes).encode()
        version = store.current_version()
        try:
            with transaction.atomic():
                DataKey.objects.create(purpose=purpose, kek_version=version,
                                       wrapped=store.wrap(version, value, wrap_aad(purpose, version)))
        except IntegrityError:  # another process created it first: use theirs
            row = DataKey.objects.get(purpose=purpose, kek_version=version)
            value = store.unwrap(row.kek_version, bytes(row.wrapped), wrap_aad(purpose, row.kek_version))
        else:
            if legacy:
                transaction.on_commit(lambda: legacy.unlink(missing_ok=True))
    else:
        value = store.unwrap(row.kek_version, bytes(row.wrapped), wrap_aad(purpose, row.kek_version))
    _remember(_secrets, cache_key, value)
    return value


def reset_caches() -> None:
    """Forget every unwrapped key held in memory (tests; after a restore)."""
    with _lock:
        _cache.clear()
        _secrets.clear()
