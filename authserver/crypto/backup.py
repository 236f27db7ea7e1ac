"""Encrypted, authenticated database backups, streamed in chunks (memory stays flat).

Archive layout::

    b"ASBACKUP" | header length (4 bytes, big-endian) | header (JSON)
    then chunks: ciphertext length (4 bytes) | AES-256-GCM(chunk)

The header names the database vendor, the KEK version and the archive's own random data key
wrapped by that KEK (AAD: the archive id); it holds no key material in clear. Chunk ``i`` is
encrypted with nonce ``i`` (96-bit counter; the key is used for this archive only) and AAD
``SHA-256(magic|header) | i | final flag``: a modified header, reordered, dropped, duplicated or
truncated chunks, or bytes after the final chunk all fail authentication.

``restore`` decrypts and verifies the *whole* archive into an owner-only temporary file before
touching the database, so a damaged archive restores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess  # noqa: S404 - pg_dump / pg_restore, fixed argument lists
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authserver.crypto.keystore import KEY_BYTES, DecryptionError, KeyStore, KeyStoreError, KeyStoreMissing

MAGIC = b"ASBACKUP"
FORMAT = "authserver-backup"
CHUNK = 1 << 20
MAX_HEADER = 64 * 1024
TAG = 16


# A Django DATABASES entry (``settings_dict``) or ``dj_database_url.parse()``'s result: both are read only.
DatabaseSettings = Mapping[str, Any]


class TextSink(Protocol):
    """Where progress lines go: a text file, or a management command's ``self.stderr``."""

    def write(self, msg: str, /) -> object: ...

    def flush(self) -> None: ...


class ArchiveError(Exception):
    """The archive is not an authserver backup, or is truncated or modified."""


class Progress:
    """Progress lines to a stream, at most once a second, and a final one: each one JSON object,
    ``{"progress": label, "bytes": n, "total": n or null, "done": bool}``."""

    def __init__(self, label: str, stream: TextSink | None, total: int | None = None, every: float = 1.0) -> None:
        self.label, self.stream, self.total, self.every = label, stream, total, every
        self.done = 0
        self._last = time.monotonic()

    def _line(self, done: bool = False) -> str:
        return json.dumps({"progress": self.label, "bytes": self.done, "total": self.total, "done": done})

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.stream and now - self._last >= self.every:
            self._last = now
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.stream:
            self.stream.write(self._line(done=True) + "\n")
            self.stream.flush()


def _chunk_aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _archive_key_aad(archive_id: bytes) -> bytes:
    return b"authserver-backup-key\x00" + archive_id


class ArchiveWriter:
    def __init__(self, out: IO[bytes], store: KeyStore, vendor: str) -> None:
        version = store.current_version()
        key = secrets.token_bytes(KEY_BYTES)
        archive_id = secrets.token_bytes(16)
        header = json.dumps({
            "format": FORMAT, "version": 1, "vendor": vendor, "kek_version": version,
            "archive_id": base64.b64encode(archive_id).decode(),
            "wrapped_key": base64.b64encode(store.wrap(version, key, _archive_key_aad(archive_id))).decode(),
            "chunk_size": CHUNK, "created": datetime.now(UTC).isoformat(),
        }, sort_keys=True).encode()
        prefix = MAGIC + len(header).to_bytes(4, "big") + header
        out.write(prefix)
        self.out = out
        self.aead = AESGCM(key)
        self.header_hash = hashlib.sha256(prefix).digest()
        self.index = 0
        self.buffer = bytearray()
        self.pending: bytes | None = None  # a full chunk, written once we know it is not the last

    def _emit(self, chunk: bytes, final: bool) -> None:
        nonce = self.index.to_bytes(12, "big")
        sealed = self.aead.encrypt(nonce, chunk, _chunk_aad(self.header_hash, self.index, final))
        self.out.write(len(sealed).to_bytes(4, "big") + sealed)
        self.index += 1

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= CHUNK:
            if self.pending is not None:
                self._emit(self.pending, final=False)
            self.pending = bytes(self.buffer[:CHUNK])
            del self.buffer[:CHUNK]

    def close(self) -> None:
        if self.buffer:
            if self.pending is not None:
                self._emit(self.pending, final=False)
            self._emit(bytes(self.buffer), final=True)
        else:
            self._emit(self.pending or b"", final=True)
        self.buffer.clear()
        self.pending = None


def read_header(fh: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    magic = fh.read(len(MAGIC))
    if magic != MAGIC:
        raise ArchiveError("not an authserver backup archive")
    raw_len = fh.read(4)
    if len(raw_len) != 4 or not 0 < int.from_bytes(raw_len, "big") <= MAX_HEADER:
        raise ArchiveError("archive header is truncated or damaged")
    raw = fh.read(int.from_bytes(raw_len, "big"))
    try:
        header = json.loads(raw)
        if header.get("format") != FORMAT or header.get("version") != 1:
            raise ValueError
        int(header["kek_version"]), header["vendor"], header["wrapped_key"], header["archive_id"]  # noqa: B018
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ArchiveError("archive header is truncated or damaged") from None
    return header, hashlib.sha256(magic + raw_len + raw).digest()


def decrypt_stream(fh: IO[bytes], store: KeyStore) -> Iterator[bytes]:
    """Yield verified plaintext chunks; ArchiveError at the first problem (caller discards output)."""
    header, header_hash = read_header(fh)
    version = int(header["kek_version"])
    try:
        if version not in store.versions(fresh=True):
            raise ArchiveError(f"the archive was made with KEK version {version}, which is not in "
                               f"{store.describe()} (retired, or the wrong key store)")
        archive_id = base64.b64decode(header["archive_id"], validate=True)
        key = store.unwrap(version, base64.b64decode(header["wrapped_key"], validate=True),
                           _archive_key_aad(archive_id))
    except KeyStoreMissing as exc:
        raise ArchiveError(f"restoring needs the key store that made the archive: {exc}") from None
    except (DecryptionError, ValueError):
        raise ArchiveError("the archive key does not unwrap: the header was modified, or this is the wrong "
                           "key store") from None
    aead = AESGCM(key)
    index = 0
    length = fh.read(4)
    while True:
        if len(length) != 4:
            raise ArchiveError(f"the archive is truncated (chunk {index} missing or cut)")
        size = int.from_bytes(length, "big")
        if not TAG <= size <= CHUNK + TAG:
            raise ArchiveError(f"the archive is damaged (chunk {index} has an impossible length)")
        sealed = fh.read(size)
        if len(sealed) != size:
            raise ArchiveError(f"the archive is truncated (chunk {index} is cut short)")
        length = fh.read(4)
        final = length == b""
        try:
            plain = aead.decrypt(index.to_bytes(12, "big"), sealed, _chunk_aad(header_hash, index, final))
        except InvalidTag:
            what = "truncated or modified" if final else "modified"
            raise ArchiveError(f"the archive is {what} (chunk {index} fails authentication)") from None
        yield plain
        if final:
            return
        index += 1


# --- databases ----------------------------------------------------------------------------------
def vendor_of(db: DatabaseSettings) -> str:
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        return "sqlite"
    if "postgresql" in engine:
        return "postgresql"
    raise KeyStoreError(f"backups support SQLite and PostgreSQL, not {engine}")


def _pg_args(db: DatabaseSettings) -> tuple[list[str], dict[str, str]]:
    args = ["-h", str(db.get("HOST") or "localhost"), "-p", str(db.get("PORT") or 5432), "-w"]
    if db.get("USER"):
        args += ["-U", str(db["USER"])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])  # environment, never the command line
    return args, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} is not installed (PostgreSQL client tools are needed)")
    return path


def dump(db: DatabaseSettings, sink: Callable[[bytes], None], workdir: Path) -> None:
    """Stream a consistent dump of ``db`` into ``sink``."""
    vendor = vendor_of(db)
    if vendor == "postgresql":
        args, env = _pg_args(db)
        errors = workdir / "pg_dump.err"
        with open(errors, "wb") as err:
            proc = subprocess.Popen(  # noqa: S603
                [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", *args, str(db["NAME"])],
                stdout=subprocess.PIPE, stderr=err, env=env)
            assert proc.stdout is not None
            try:
                while chunk := proc.stdout.read(CHUNK):
                    sink(chunk)
            finally:
                proc.stdout.close()
                rc = proc.wait()
        if rc != 0:
            raise RuntimeError(f"pg_dump failed ({rc}): {errors.read_text(errors='replace').strip()[-2000:]}")
        return
    snapshot = workdir / "snapshot.sqlite3"
    src = sqlite3.connect(str(db["NAME"]))
    dst = sqlite3.connect(str(snapshot))
    try:
        src.backup(dst, pages=4096)  # the SQLite online backup API: a consistent snapshot
    finally:
        dst.close()
        src.close()
    with open(snapshot, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sink(chunk)


def is_empty(db: DatabaseSettings) -> bool:
    if vendor_of(db) == "sqlite":
        path = Path(str(db["NAME"]))
        if not path.exists() or path.stat().st_size == 0:
            return True
        with sqlite3.connect(str(path)) as conn:
            (n,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()
        return int(n) == 0
    import psycopg

    conninfo = {"host": db.get("HOST") or "localhost", "port": db.get("PORT") or 5432, "dbname": db["NAME"],
                "user": db.get("USER") or None, "password": db.get("PASSWORD") or None}
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')").fetchone()
    assert row is not None  # count(*) always answers one row
    return int(row[0]) == 0


def load(db: DatabaseSettings, dump_file: Path, workdir: Path) -> None:
    """Restore a verified plaintext dump into the (empty) database ``db``."""
    if vendor_of(db) == "postgresql":
        args, env = _pg_args(db)
        result = subprocess.run(  # noqa: S603
            [_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
             *args, "-d", str(db["NAME"]), str(dump_file)],
            capture_output=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_restore failed ({result.returncode}): "
                               f"{result.stderr.decode(errors='replace').strip()[-2000:]}")
        return
    target = Path(str(db["NAME"]))
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    src = sqlite3.connect(str(dump_file))
    dst = sqlite3.connect(str(target))
    try:
        (check,) = src.execute("PRAGMA integrity_check").fetchone()
        if check != "ok":
            raise RuntimeError(f"the SQLite snapshot fails its integrity check: {check}")
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def make_workdir(base: Path) -> tempfile.TemporaryDirectory[str]:
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=base, prefix="backup-")  # mode 0700
