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
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
NONCE_BYTES = 12
FILE_FORMAT = "authserver-keystore"


class KeyStoreError(ImproperlyConfigured):
    """The key store is missing, damaged, unreachable or misconfigured: nothing can be decrypted."""


class KeyStoreMissing(KeyStoreError):
    """No key store exists yet (a fresh install, or lost keys: the caller decides which)."""


class DecryptionError(Exception):
    """A ciphertext or wrapped key failed authentication: wrong key, wrong record, or tampered."""


class KeyStore(ABC):
    #: Seconds another process may go on seeing the previous current version after a rotation.
    staleness: float = 0.0
    name: str = ""

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


# --- file ---------------------------------------------------------------------------------------
def _check_value(key: bytes) -> str:
    return hmac.new(key, b"authserver-kek-check", hashlib.sha256).hexdigest()[:16]


class FileKeyStore(KeyStore):
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[int, bytes] = {}

    def describe(self) -> str:
        return f"key file {self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def _load(self) -> dict[int, bytes]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyStoreMissing(f"the key file {self.path} does not exist") from None
        if st.st_mode & 0o077:
            raise KeyStoreError(
                f"the key file {self.path} is readable or writable by group or others "
                f"(mode {st.st_mode & 0o777:o}); run: chmod 600 {self.path}"
            )
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return self._keys
            keys = self._parse(self.path.read_bytes())
            self._stamp, self._keys = stamp, keys
            return keys

    def _parse(self, raw: bytes) -> dict[int, bytes]:
        problem = f"the key file {self.path} is corrupt"
        try:
            doc = json.loads(raw)
            if doc.get("format") != FILE_FORMAT or doc.get("version") != 1 or not isinstance(doc.get("keys"), dict):
                raise ValueError("not an authserver key file")
            keys: dict[int, bytes] = {}
            for version, entry in doc["keys"].items():
                key = base64.b64decode(entry["key"], validate=True)
                if not version.isdigit() or int(version) < 1 or len(key) != KEY_BYTES:
                    raise ValueError(f"bad entry {version!r}")
                if not hmac.compare_digest(_check_value(key), str(entry["check"])):
                    raise ValueError(f"key version {version} fails its check value")
                keys[int(version)] = key
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"{problem} ({exc}); restore it from your key backup") from None
        if not keys:
            raise KeyStoreError(f"{problem} (it holds no key); restore it from your key backup")
        return keys

    def _serialize(self, keys: dict[int, bytes], created: dict[str, str]) -> bytes:
        doc = {
            "format": FILE_FORMAT,
            "version": 1,
            "keys": {
                str(v): {"key": base64.b64encode(k).decode(), "check": _check_value(k),
                         "created": created.get(str(v), datetime.now(UTC).isoformat())}
                for v, k in sorted(keys.items())
            },
        }
        return json.dumps(doc, indent=1).encode() + b"\n"

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.parent / f".{self.path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _created(self) -> dict[str, str]:
        try:
            doc = json.loads(self.path.read_bytes())
            return {v: e.get("created", "") for v, e in doc["keys"].items()}
        except (OSError, ValueError, KeyError, AttributeError):
            return {}

    def _replace(self, keys: dict[int, bytes]) -> None:
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._serialize(keys, self._created()))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def initialize(self) -> int:
        with self._write_lock():
            if self.path.exists():
                self._load()
                return self.current_version()
            self._replace({1: secrets.token_bytes(KEY_BYTES)})
        return 1

    def versions(self, *, fresh: bool = False) -> list[int]:
        return sorted(self._load())  # a stat per call: always fresh

    def create_version(self) -> int:
        with self._write_lock():
            keys = dict(self._load())
            version = max(keys) + 1
            keys[version] = secrets.token_bytes(KEY_BYTES)
            self._replace(keys)
        return version

    def destroy_version(self, version: int) -> None:
        with self._write_lock():
            keys = dict(self._load())
            if version not in keys:
                raise KeyStoreError(f"KEK version {version} is not in {self.describe()}")
            if version == max(keys):
                raise KeyStoreError("the current KEK version cannot be destroyed")
            del keys[version]
            self._replace(keys)

    def _kek(self, version: int) -> AESGCM:
        keys = self._load()
        if version not in keys:
            raise KeyStoreError(f"KEK version {version} is not in {self.describe()} (retired, or the wrong key file)")
        return AESGCM(keys[version])

    def wrap(self, version: int, key: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._kek(version).encrypt(nonce, key, aad)

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        kek = self._kek(version)
        try:
            return kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(f"wrapped key failed authentication under KEK version {version}") from None


# --- PKCS#11 ------------------------------------------------------------------------------------
# One logged-in session per token and process (PKCS#11 login state is per process).
_SESSIONS: dict[tuple[str, str], tuple[int, Any]] = {}


class Pkcs11KeyStore(KeyStore):
    name = "pkcs11"
    staleness = 5.0

    def __init__(self, module: str, token_label: str, pin: str, label_prefix: str = "authserver-kek",
                 staleness: float = 5.0) -> None:
        self.staleness = staleness  # how long the list of KEK versions is cached
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self.label_prefix = label_prefix
        self._lock = threading.RLock()
        self._session: Any = None
        self._pid = 0
        self._handles: dict[int, Any] = {}
        self._versions: tuple[float, list[int]] | None = None

    def describe(self) -> str:
        return f"PKCS#11 token {self.token_label!r} ({self.module})"

    def _open(self) -> Any:
        import pkcs11
        from pkcs11.exceptions import PKCS11Error

        if self._session is not None and self._pid == os.getpid():
            return self._session
        try:
            lib = pkcs11.lib(self.module)
            if self._pid and self._pid != os.getpid():
                lib.reinitialize()  # a forked child must initialise Cryptoki again
            try:
                token = lib.get_token(token_label=self.token_label)
            except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned) as exc:
                raise KeyStoreError(f"{self.describe()}: {type(exc).__name__}") from None
            shared = _SESSIONS.get((self.module, self.token_label))
            if shared and shared[0] == os.getpid():
                self._session = shared[1]
            else:
                try:
                    self._session = token.open(user_pin=self._pin, rw=True)
                except pkcs11.UserAlreadyLoggedIn:  # login is per process: another session did it
                    self._session = token.open(rw=True)
                _SESSIONS[(self.module, self.token_label)] = (os.getpid(), self._session)
        except PKCS11Error as exc:
            raise KeyStoreError(f"{self.describe()} cannot be opened: {type(exc).__name__} {exc}") from None
        except OSError as exc:
            raise KeyStoreError(f"{self.describe()} cannot be loaded: {exc}") from None
        self._pid = os.getpid()
        self._handles.clear()
        return self._session

    def _reset_session(self) -> None:
        _SESSIONS.pop((self.module, self.token_label), None)
        self._session = None
        self._handles.clear()
        self._versions = None

    def _label(self, version: int) -> str:
        return f"{self.label_prefix}-{version}"

    def _scan(self) -> dict[int, Any]:
        from pkcs11 import Attribute, ObjectClass

        session = self._open()
        found: dict[int, Any] = {}
        prefix = self.label_prefix + "-"
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            label = obj.label or ""
            if label.startswith(prefix) and label[len(prefix):].isdigit():
                version = int(label[len(prefix):])
                if version in found:
                    raise KeyStoreError(f"{self.describe()} holds two keys labelled {label!r}")
                found[version] = obj
        return found

    def _call(self, fn: Any) -> Any:
        """Run ``fn`` with the session lock, reopening the session once if the token went away."""
        from pkcs11.exceptions import PKCS11Error

        with self._lock:
            try:
                return fn()
            except (DecryptionError, KeyStoreError):
                raise
            except PKCS11Error:
                self._reset_session()
                return fn()

    def exists(self) -> bool:
        return bool(self.versions())

    def versions(self, *, fresh: bool = False) -> list[int]:
        cached = self._versions
        if cached and not fresh and time.monotonic() - cached[0] < self.staleness and self._pid == os.getpid():
            return cached[1]
        found = self._call(self._scan)
        self._versions = (time.monotonic(), sorted(found))
        return sorted(found)

    def _generate(self, version: int) -> None:
        from pkcs11 import Attribute, KeyType

        session = self._open()
        session.generate_key(
            KeyType.AES, KEY_BYTES * 8, label=self._label(version), store=True,
            template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.ENCRYPT: True,
                      Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False,
                      Attribute.TOKEN: True, Attribute.PRIVATE: True},
        )
        self._versions = None

    def initialize(self) -> int:
        def go() -> int:
            found = self._scan()
            if found:
                return max(found)
            self._generate(1)
            return 1

        return self._call(go)

    def create_version(self) -> int:
        def go() -> int:
            found = self._scan()
            if not found:
                raise KeyStoreMissing(f"{self.describe()} holds no key-encryption key")
            version = max(found) + 1
            self._generate(version)
            return version

        return self._call(go)

    def destroy_version(self, version: int) -> None:
        def go() -> None:
            found = self._scan()
            if version not in found:
                raise KeyStoreError(f"KEK version {version} is not in {self.describe()}")
            if version == max(found):
                raise KeyStoreError("the current KEK version cannot be destroyed")
            found[version].destroy()
            self._handles.pop(version, None)
            self._versions = None

        self._call(go)

    def _key(self, version: int) -> Any:
        handle = self._handles.get(version)
        if handle is None:
            found = self._scan()
            if version not in found:
                raise KeyStoreError(
                    f"KEK version {version} is not in {self.describe()} (retired, or the wrong token)")
            handle = self._handles[version] = found[version]
        return handle

    def wrap(self, version: int, key: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = secrets.token_bytes(NONCE_BYTES)

        def go() -> bytes:
            return nonce + self._key(version).encrypt(
                key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128))

        return self._call(go)

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import GCMParams

        def go() -> bytes:
            kek = self._key(version)
            try:
                return bytes(kek.decrypt(wrapped[NONCE_BYTES:], mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(wrapped[:NONCE_BYTES], aad, 128)))
            except PKCS11Error:
                raise DecryptionError(f"wrapped key failed authentication under KEK version {version}") from None

        if len(wrapped) < NONCE_BYTES + 16:
            raise DecryptionError("wrapped key too short")
        return self._call(go)


# --- configuration ------------------------------------------------------------------------------
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
