"""The PKCS#11 key store (``AUTHSERVER_KEYSTORE=pkcs11``): KEKs inside an HSM.

Configured by ``AUTHSERVER_PKCS11_MODULE``, ``_TOKEN_LABEL`` and ``_PIN``. KEKs are AES-256 token
objects labelled ``<AUTHSERVER_PKCS11_KEY_LABEL>-<version>``, generated inside the HSM as sensitive
and non-extractable: the KEK never leaves it; wrapping is CKM_AES_GCM inside the token. The
``pkcs11`` library is imported only when this backend is used.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from authserver.crypto.keystore import KEY_BYTES, NONCE_BYTES, DecryptionError, KeyStore, KeyStoreError, KeyStoreMissing

# One logged-in session per token and process (PKCS#11 login state is per process).
_T = TypeVar("_T")
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

    def _call(self, fn: Callable[[], _T]) -> _T:
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
            sealed: bytes = self._key(version).encrypt(
                key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128))
            return nonce + sealed

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
