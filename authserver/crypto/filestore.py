"""The file key store (``AUTHSERVER_KEYSTORE=file``, the default): KEKs in a JSON key file.

The file (``AUTHSERVER_KEYSTORE_FILE``, default ``<data dir>/keystore.json``) is created
owner-only (0600) and refused if group or others may read it. Each key carries a check value, so a
damaged file is refused rather than silently producing garbage. Writes replace the file atomically
(temporary file, fsync, rename, fsync of the directory) under an exclusive lock.
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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authserver.crypto.keystore import KEY_BYTES, NONCE_BYTES, DecryptionError, KeyStore, KeyStoreError, KeyStoreMissing

FILE_FORMAT = "authserver-keystore"


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
