"""Which key store serves this process, chosen by ``AUTHSERVER_KEYSTORE`` (``file`` or ``pkcs11``).

One instance per configuration and process, so the file store's parsed keys and the PKCS#11
store's logged-in session are shared by every caller.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.conf import settings

from authserver.crypto.filestore import FileKeyStore
from authserver.crypto.keystore import KeyStore, KeyStoreError
from authserver.crypto.pkcs11store import Pkcs11KeyStore

_stores: dict[tuple[Any, ...], KeyStore] = {}
_stores_lock = threading.Lock()


def _config() -> tuple[Any, ...]:
    backend = settings.KEYSTORE
    if backend == "file":
        return ("file", str(settings.KEYSTORE_FILE))
    if backend == "pkcs11":
        module = settings.PKCS11_MODULE
        label = settings.PKCS11_TOKEN_LABEL
        pin = settings.PKCS11_PIN
        if not (module and label and pin):
            raise KeyStoreError("AUTHSERVER_KEYSTORE=pkcs11 needs AUTHSERVER_PKCS11_MODULE, "
                                "AUTHSERVER_PKCS11_TOKEN_LABEL and AUTHSERVER_PKCS11_PIN")
        return ("pkcs11", module, label, pin, settings.PKCS11_KEY_LABEL,
                float(settings.PKCS11_VERSION_CACHE_SECONDS))
    raise KeyStoreError(f"AUTHSERVER_KEYSTORE must be 'file' or 'pkcs11', not {backend!r}")


def get_keystore() -> KeyStore:
    """The configured key store (one instance per configuration and process)."""
    config = _config()
    with _stores_lock:
        store = _stores.get(config)
        if store is None:
            store = FileKeyStore(Path(config[1])) if config[0] == "file" else Pkcs11KeyStore(*config[1:])
            _stores[config] = store
        return store


def check_configuration() -> None:
    """Startup check without the database: settings are valid and an existing key file is sound."""
    store = get_keystore()
    if isinstance(store, FileKeyStore) and store.exists():
        store.versions()


def reset() -> None:
    """Forget every key store instance (tests switch configurations)."""
    with _stores_lock:
        _stores.clear()
