"""The checkpoint file: signed, hash-linked JSON lines that anchor the audit trail outside the database.

One line per checkpoint, each a JSON object::

    {"at": "2026-12-02T03:30:00+00:00", "chain": "<hex>", "count": 1234, "event_id": 1240,
     "key_id": "<16 hex>", "kind": "checkpoint", "prev": "<64 hex>", "seq": 1234, "sig": "<base64>", "v": 1}

* ``seq``, ``event_id``, ``chain``: the chain head (the newest sealed event: its ``seq``, its id and
  its chain value); ``count``: how many sealed events the trail held; ``at``: when (UTC).
* ``kind``: ``checkpoint`` (written every ``AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL`` seconds) or
  ``restore`` (``manage.py audit restore-point``: the database was legitimately rewound, e.g. by a
  restore; earlier checkpoints no longer describe it).
* ``prev``: SHA-256 (hex) of the previous line's bytes (without its newline), 64 zeros on the first
  line: the file is a chain, so a removed, edited or reordered line shows.
* ``sig``: Ed25519 (RFC 8032) signature, base64, over the canonical JSON of every other field
  (keys sorted, no spaces, UTF-8); ``key_id``: the first 16 hex digits of SHA-256 of the raw
  32-byte public key, so checkpoints signed by an earlier key still name the key to check them with.

Nothing here touches the database or the key store: :func:`verify_lines` needs only the public
key(s), which is what ``manage.py audit verify-checkpoints --public-key`` runs.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = 1
GENESIS = "0" * 64
KINDS = ("checkpoint", "restore")
_FIELDS = {"v", "kind", "seq", "event_id", "chain", "count", "at", "key_id", "prev", "sig"}
_TAIL_BYTES = 8192


def canonical(body: Mapping[str, Any]) -> bytes:
    """The signed bytes: every field but ``sig``, keys sorted, no spaces."""
    return json.dumps({k: v for k, v in body.items() if k != "sig"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM: what ``openssl pkey -pubin`` and every library read."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_keys(pems: Iterable[bytes]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 public keys in PEM blobs (several per blob allowed), by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for blob in pems:
        for block in blob.split(b"-----END PUBLIC KEY-----"):
            if b"-----BEGIN PUBLIC KEY-----" not in block:
                continue
            key = serialization.load_pem_public_key(block + b"-----END PUBLIC KEY-----\n")
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 public key")
            keys[key_id(key)] = key
    if not keys:
        raise ValueError("no PEM public key found")
    return keys


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def signed_line(body: Mapping[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """The complete line (without newline) for ``body``, signed."""
    body = {**body, "v": FORMAT, "key_id": key_id(private_key.public_key())}
    signature = base64.b64encode(private_key.sign(canonical(body))).decode()
    return json.dumps({**body, "sig": signature}, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Checkpoint:
    line: int | None  # 1-based line number in the file (None: read from its end, number unknown)
    kind: str
    seq: int
    event_id: int | None
    chain: str
    count: int
    at: str
    key_id: str
    hash: str

    def describe(self) -> str:
        where = f", line {self.line}" if self.line is not None else ""
        return f"{self.kind} of {self.at} (seq {self.seq}{where})"


@dataclass(frozen=True)
class FileProblem:
    line: int
    problem: str


class FileReport(NamedTuple):
    checked: int
    problems: list[FileProblem]
    latest: Checkpoint | None
    found: Checkpoint | None  # the line whose hash is ``look_for``, if any


def parse_line(raw: bytes, number: int | None = None) -> tuple[dict[str, Any], Checkpoint]:
    body = json.loads(raw)
    if not isinstance(body, dict) or set(body) != _FIELDS or body["v"] != FORMAT or body["kind"] not in KINDS:
        raise ValueError("not a checkpoint of this format")
    for name in ("seq", "count"):
        if not isinstance(body[name], int) or isinstance(body[name], bool) or body[name] < 0:
            raise ValueError(f"{name} is not a non-negative integer")
    checkpoint = Checkpoint(line=number, kind=body["kind"], seq=body["seq"], event_id=body["event_id"],
                            chain=str(body["chain"]), count=body["count"], at=str(body["at"]),
                            key_id=str(body["key_id"]), hash=line_hash(raw))
    return body, checkpoint


def verify_lines(lines: Iterable[bytes], public_keys: Mapping[str, Ed25519PublicKey], *,
                 look_for: str | None = None) -> FileReport:
    """Check every line's signature and link, and that the head never moves back between checkpoints.

    Between two checkpoints the trail only grows: ``seq`` and ``count`` never decrease, and the same
    ``seq`` keeps the same chain value. A ``restore`` line starts over (the database was rewound
    on purpose, and says so in the file).
    """
    problems: list[FileProblem] = []
    previous: Checkpoint | None = None
    found: Checkpoint | None = None
    checked = 0
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\n")
        checked += 1
        try:
            body, checkpoint = parse_line(raw, number)
            signature = base64.b64decode(body["sig"], validate=True)
        except (ValueError, TypeError, binascii.Error) as exc:
            problems.append(FileProblem(number, f"unreadable line ({exc})"))
            previous = None
            continue
        expected_prev = previous.hash if previous is not None else GENESIS
        if body["prev"] != expected_prev:
            problems.append(FileProblem(number, "does not follow the line before it (prev hash differs): "
                                                "lines were removed, inserted, edited or reordered"))
        key = public_keys.get(checkpoint.key_id)
        if key is None:
            problems.append(FileProblem(number, f"signed by key {checkpoint.key_id}, which is not among "
                                                "the public keys given"))
        else:
            try:
                key.verify(signature, canonical(body))
            except InvalidSignature:
                problems.append(FileProblem(number, "signature does not verify: the line was altered or forged"))
        if previous is not None and checkpoint.kind == "checkpoint":
            if checkpoint.seq < previous.seq or checkpoint.count < previous.count:
                problems.append(FileProblem(number, f"the trail moved back from seq {previous.seq} to "
                                                    f"{checkpoint.seq} without a restore point"))
            elif checkpoint.seq == previous.seq and checkpoint.chain != previous.chain:
                problems.append(FileProblem(number, f"seq {checkpoint.seq} changed its chain value"))
        if look_for is not None and checkpoint.hash == look_for:
            found = checkpoint
        previous = checkpoint
    return FileReport(checked, problems, previous, found)


def read_lines(path: Path) -> Iterator[bytes]:
    """The file's non-empty lines, streamed (raises OSError if it can't be read)."""
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield raw.rstrip(b"\n")


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """The file opened for appending (O_APPEND, created 0600) under an exclusive lock: one writer at a time."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def last_line(path: Path) -> bytes | None:
    """The file's last non-empty line, read from its end (the file grows by a line a minute)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            chunk = _TAIL_BYTES
            while True:
                fh.seek(max(0, size - chunk))
                tail = fh.read()
                lines = [line for line in tail.split(b"\n") if line.strip()]
                if not lines:
                    return None
                if len(lines) > 1 or chunk >= size:
                    return lines[-1]
                chunk *= 2
    except FileNotFoundError:
        return None


def append(fd: int, line: bytes) -> None:
    """Append one line and make it durable before returning (the caller holds :func:`locked`)."""
    data = line.rstrip(b"\n") + b"\n"
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(f"short write to the checkpoint file ({written} of {len(data)} bytes)")
    os.fsync(fd)
