"""Key stores: where the key-encryption keys (KEKs) live.

A KEK only ever wraps and unwraps *data keys* (AES-256-GCM, with associated data naming what the
data key is for); it never encrypts application data itself. KEKs are numbered: version 1 is
created on a fresh install, ``manage.py keys rotate`` adds the next, ``keys retire`` destroys one
nothing depends on any more. The current version (the highest) wraps every new data key.

Two backends, chosen by ``AUTHSERVER_KEYSTORE``:

``file`` (default)
    A JSON key file (``AUTHSERVER_KEYSTORE_FILE``, default ``<data dir>/keystore.json``), created
    owner-only (0600) and refused if group or others may read it. Each key carries a check value,
    so a damaged file is refused rather than silently producing garbage.
``pkcs11``
    An HSM through PKCS#11 (``AUTHSERVER_PKCS11_MODULE``, ``_TOKEN_LABEL``, ``_PIN``). KEKs are
    AES-256 token objects labelled ``<AUTHSERVER_PKCS11_KEY_LABEL>-<version>``, generated inside
    the HSM as sensitive and non-extractable: the KEK never leaves it; wrapping is CKM_AES_GCM
    inside the token.

Neither backend ever creates a key on its own: :meth:`KeyStore.initialize` is called by the
envelope layer only when the database holds no data key yet (a fresh install), so a lost or
damaged key store fails with a clear error instead of orphaning the data.

This module holds the interface and its errors; the backends are :mod:`authserver.crypto.filestore`
and :mod:`authserver.crypto.pkcs11store`, and :func:`authserver.crypto.backends.get_keystore`
returns the configured one.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyStoreError(ImproperlyConfigured):
    """The key store is missing, damaged, unreachable or misconfigured: nothing can be decrypted."""


class KeyStoreMissing(KeyStoreError):
    """No key store exists yet (a fresh install, or lost keys: the caller decides which)."""


class DecryptionError(Exception):
    """A ciphertext or wrapped key failed authentication: wrong key, wrong record, or tampered."""


# Operations counted in authserver_keystore_operations_total (by backend and outcome).
COUNTED_OPERATIONS = ("initialize", "create_version", "destroy_version", "wrap", "unwrap")


def _counted(operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def counted(self: KeyStore, *args: Any, **kwargs: Any) -> Any:
        from authserver.observability import metrics  # not at import: settings may not be ready yet

        series = metrics.keystore_operations
        try:
            result = method(self, *args, **kwargs)
        except Exception:
            series.labels(self.name or type(self).__name__, operation, "error").inc()
            raise
        series.labels(self.name or type(self).__name__, operation, "ok").inc()
        return result

    return counted


class KeyStore(ABC):
    #: Seconds another process may go on seeing the previous current version after a rotation.
    staleness: float = 0.0
    name: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every backend's own implementation is counted, whoever calls it.
        super().__init_subclass__(**kwargs)
        for operation in COUNTED_OPERATIONS:
            method = cls.__dict__.get(operation)
            if callable(method) and not getattr(method, "__isabstractmethod__", False):
                setattr(cls, operation, _counted(operation, method))

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def initialize(self) -> int:
        """Create KEK version 1. Only for a fresh install; fails if any KEK exists."""

    @abstractmethod
    def versions(self, *, fresh: bool = False) -> list[int]:
        """KEK versions present (``fresh``: bypass any cache, e.g. for a version just created elsewhere)."""

    def current_version(self) -> int:
        versions = self.versions()
        if not versions:
            raise KeyStoreMissing(f"{self.describe()} holds no key-encryption key")
        return max(versions)

    @abstractmethod
    def create_version(self) -> int: ...

    @abstractmethod
    def destroy_version(self, version: int) -> None: ...

    @abstractmethod
    def wrap(self, version: int, key: bytes, aad: bytes) -> bytes: ...

    @abstractmethod
    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes: ...

    @abstractmethod
    def describe(self) -> str: ...
