"""Encrypted backups: round trip into an empty database (SQLite, or PostgreSQL with DATABASE_URL),
tampered and truncated archives refused with nothing restored, and nothing sensitive inside."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from authserver.crypto import backup
from authserver.crypto.backends import get_keystore
from authserver.crypto.filestore import FileKeyStore
from tests.crypto.conftest import reset_crypto
from tests.crypto.held import held_secret
from tests.crypto.testapp.models import Other, Record

NOTE = "Patient note: Bob Martin, born 1970-01-01, diagnosis private"
EMAIL = "bob.martin.private@example.org"
RECORDS_SQL = "SELECT id, name, note, data FROM crypto_testapp_record ORDER BY id"
KEYS_SQL = "SELECT purpose, kek_version, wrapped FROM crypto_datakey ORDER BY purpose, kek_version"


def normalise(rows: list[tuple]) -> list[tuple]:
    return [tuple(bytes(v) if isinstance(v, memoryview | bytearray) else str(v) if v is not None else None
                  for v in row) for row in rows]


def source_rows(sql: str) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql)
        return normalise(cur.fetchall())


class Target:
    """An empty database to restore into: a new SQLite file, or a scratch PostgreSQL database."""

    def __init__(self, url: str, query: Any) -> None:
        self.url, self.query = url, query

    def is_empty(self) -> bool:
        import dj_database_url

        return backup.is_empty(dj_database_url.parse(self.url))


@contextmanager
def scratch_database(tmp_path: Path) -> Iterator[Target]:
    if connection.vendor == "sqlite":
        import sqlite3

        path = tmp_path / f"restored-{secrets.token_hex(4)}.sqlite3"

        def query(sql: str) -> list[tuple]:
            with sqlite3.connect(path) as conn:
                return normalise(conn.execute(sql).fetchall())

        yield Target(f"sqlite:///{path}", query)
        return
    import psycopg

    db = connection.settings_dict
    params = {"host": db["HOST"] or "localhost", "port": db["PORT"] or 5432, "user": db["USER"],
              "password": db["PASSWORD"]}
    name = f"scratch_restore_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            def query(sql: str) -> list[tuple]:
                with psycopg.connect(dbname=name, **params) as conn:
                    return normalise(conn.execute(sql).fetchall())

            yield Target(f"postgres://{params['user']}:{params['password']}@{params['host']}:{params['port']}/{name}",
                         query)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_archive(tmp_path: Path) -> tuple[Path, str]:
    out, err = io.StringIO(), io.StringIO()
    archive = tmp_path / "backup.asb"
    call_command("backup", "--output", str(archive), stdout=out, stderr=err)
    assert archive.stat().st_mode & 0o777 == 0o600
    return archive, err.getvalue()


def plaintext_dump(archive: Path, tmp_path: Path) -> bytes:
    """The verified content of an archive, as text-searchable bytes (SQL for PostgreSQL)."""
    with archive.open("rb") as fh:
        content = b"".join(backup.decrypt_stream(fh, get_keystore()))
    if connection.vendor == "sqlite":
        return content
    dump_file = tmp_path / "dump.pgc"
    dump_file.write_bytes(content)
    return subprocess.run([shutil.which("pg_restore"), "-f", "-", str(dump_file)], check=True,
                          capture_output=True).stdout


@pytest.fixture
def populated(transactional_db: Any) -> dict[str, Any]:
    records = [Record.objects.create(name=f"r{i}", note=f"{NOTE} #{i}", data={"email": EMAIL, "i": i})
               for i in range(5)]
    Other.objects.create(secret="other-column-secret-value")
    return {"records": records, "webhook": held_secret()}


def test_backup_restore_round_trip(populated, tmp_path, isolated_key_file):
    archive, progress = make_archive(tmp_path)
    lines = [json.loads(line) for line in progress.splitlines()]  # JSON lines on stderr
    assert lines[-1]["progress"] == "backup" and lines[-1]["done"] is True

    with scratch_database(tmp_path) as target:
        assert target.is_empty()
        err = io.StringIO()
        call_command("restore", str(archive), "--database-url", target.url, stdout=io.StringIO(), stderr=err)
        progress_lines = [json.loads(line) for line in err.getvalue().splitlines()]
        assert ("restore: verified", True) in [(line["progress"], line["done"]) for line in progress_lines]
        assert target.query(RECORDS_SQL) == source_rows(RECORDS_SQL)
        assert target.query(KEYS_SQL) == source_rows(KEYS_SQL)  # the same wrapped keys: same key store
        restored = target.query(RECORDS_SQL)
        assert len(restored) == 5

        # The restored rows decrypt with the key store alone.
        field = Record._meta.get_field("note")
        reset_crypto()
        by_pk = {str(r.pk.hex if connection.vendor == "sqlite" else r.pk): r for r in populated["records"]}
        for pk, _name, note, _data in restored:
            assert field.decrypt_value(by_pk[pk].pk, note) == by_pk[pk].note

        with pytest.raises(CommandError, match="not empty"):
            call_command("restore", str(archive), "--database-url", target.url, stderr=io.StringIO())


def test_restore_refuses_a_non_empty_database(populated, tmp_path):
    archive, _ = make_archive(tmp_path)
    before = source_rows(RECORDS_SQL)
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(archive), stderr=io.StringIO())
    assert source_rows(RECORDS_SQL) == before


def test_archive_holds_no_plaintext_no_credential_no_key(populated, tmp_path, isolated_key_file, issued_credentials):
    archive, _ = make_archive(tmp_path)
    data = archive.read_bytes()
    keyfile = json.loads(isolated_key_file.read_text())
    kek_b64 = [entry["key"] for entry in keyfile["keys"].values()]
    kek_raw = [base64.b64decode(k) for k in kek_b64]
    secrets_to_hide = [NOTE.encode(), EMAIL.encode(), b"other-column-secret-value", populated["webhook"],
                       *[k.encode() for k in kek_b64], *kek_raw]
    password = connection.settings_dict.get("PASSWORD") or ""
    if password:
        secrets_to_hide.append(f":{password}@".encode())
    for value in secrets_to_hide + [c.encode() for c in issued_credentials]:
        assert value not in data

    header, _ = backup.read_header(io.BytesIO(data))
    assert set(header) == {"format", "version", "vendor", "kek_version", "archive_id", "wrapped_key", "chunk_size",
                           "created"}

    dump = plaintext_dump(archive, tmp_path)
    assert b"crypto_testapp_record" in dump  # really the database
    for value in secrets_to_hide:
        assert value not in dump
    for value in issued_credentials:
        assert value.encode() not in dump


def _tamper(data: bytes, how: str) -> bytes:
    header_len = int.from_bytes(data[8:12], "big")
    body = 12 + header_len
    if how == "header-byte":
        i = data.index(b'"kek_version"')
        return data[:i + 1] + b"K" + data[i + 2:]
    if how == "wrapped-key":
        i = data.index(b'"wrapped_key": "') + 20
        return data[:i] + (b"A" if data[i:i + 1] != b"A" else b"B") + data[i + 1:]
    if how == "chunk-byte":
        i = body + 4 + (len(data) - body - 4) // 2
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
    if how == "tag-byte":
        return data[:-1] + bytes([data[-1] ^ 0x80])
    if how == "truncated-1":
        return data[:-1]
    if how == "truncated-half":
        return data[:body + (len(data) - body) // 2]
    if how == "header-only":
        return data[:body]
    if how == "appended":
        return data + b"\x00\x00\x00\x20" + secrets.token_bytes(32)
    if how == "not-an-archive":
        return b"PGDMP" + data[5:]
    raise AssertionError(how)


TAMPERINGS = ["header-byte", "wrapped-key", "chunk-byte", "tag-byte", "truncated-1", "truncated-half", "header-only",
              "appended", "not-an-archive"]


def test_tampered_or_truncated_archives_restore_nothing(populated, tmp_path):
    archive, _ = make_archive(tmp_path)
    data = archive.read_bytes()
    with scratch_database(tmp_path) as target:
        for how in TAMPERINGS:
            bad = tmp_path / f"bad-{how}.asb"
            bad.write_bytes(_tamper(data, how))
            with pytest.raises(CommandError, match="nothing was restored") as info:
                call_command("restore", str(bad), "--database-url", target.url, stderr=io.StringIO())
            assert "Traceback" not in str(info.value)
            assert target.is_empty(), how


def test_restore_needs_the_key_store_that_made_the_archive(populated, tmp_path, settings):
    archive, _ = make_archive(tmp_path)
    other = tmp_path / "other-keys.json"
    FileKeyStore(other).initialize()
    settings.KEYSTORE_FILE = other
    reset_crypto()
    with scratch_database(tmp_path) as target:
        with pytest.raises(CommandError, match="wrong key store"):
            call_command("restore", str(archive), "--database-url", target.url, stderr=io.StringIO())
        settings.KEYSTORE_FILE = tmp_path / "no-such-keystore.json"
        reset_crypto()
        with pytest.raises(CommandError, match="nothing was restored"):
            call_command("restore", str(archive), "--database-url", target.url, stderr=io.StringIO())
        assert not (tmp_path / "no-such-keystore.json").exists()  # restore never creates a key
        assert target.is_empty()


# --- the stream format itself, on multi-chunk data -------------------------------------------------
def _chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    body = 12 + int.from_bytes(data[8:12], "big")
    head, rest, chunks = data[:body], data[body:], []
    while rest:
        n = int.from_bytes(rest[:4], "big")
        chunks.append(rest[:4 + n])
        rest = rest[4 + n:]
    return head, chunks


def _seal(store: Any, payload: bytes) -> bytes:
    out = io.BytesIO()
    writer = backup.ArchiveWriter(out, store, "sqlite")
    for i in range(0, len(payload), 300_000):  # uneven writes
        writer.write(payload[i:i + 300_000])
    writer.close()
    return out.getvalue()


def _open(store: Any, data: bytes) -> bytes:
    return b"".join(backup.decrypt_stream(io.BytesIO(data), store))


@pytest.mark.parametrize("size", [0, 1, backup.CHUNK, 2 * backup.CHUNK, 3 * backup.CHUNK + 12345])
def test_stream_round_trip(tmp_path, size):
    store = FileKeyStore(tmp_path / "k.json")
    store.initialize()
    payload = secrets.token_bytes(size)
    assert _open(store, _seal(store, payload)) == payload


def test_reordered_dropped_or_duplicated_chunks_are_refused(tmp_path):
    store = FileKeyStore(tmp_path / "k.json")
    store.initialize()
    head, chunks = _chunks(_seal(store, secrets.token_bytes(3 * backup.CHUNK + 100)))
    assert len(chunks) == 4
    variants = {
        "swapped": [chunks[0], chunks[2], chunks[1], chunks[3]],
        "dropped-middle": [chunks[0], chunks[2], chunks[3]],
        "dropped-final": chunks[:3],
        "duplicated": [chunks[0], chunks[0], chunks[1], chunks[2], chunks[3]],
        "final-twice": [*chunks, chunks[3]],
    }
    for name, parts in variants.items():
        with pytest.raises(backup.ArchiveError):
            _open(store, head + b"".join(parts))
        assert name
    # A chunk from another archive (same key store) does not fit either.
    other_head, other_chunks = _chunks(_seal(store, secrets.token_bytes(3 * backup.CHUNK + 100)))
    with pytest.raises(backup.ArchiveError):
        _open(store, head + chunks[0] + other_chunks[1] + chunks[2] + chunks[3])


@pytest.mark.django_db
def test_stream_on_the_hsm(hsm):
    from authserver.crypto import keystore_ready

    store = keystore_ready()
    payload = secrets.token_bytes(backup.CHUNK + 7)
    sealed = _seal(store, payload)
    assert _open(store, sealed) == payload
    with pytest.raises(backup.ArchiveError):
        _open(store, sealed[:-3])
