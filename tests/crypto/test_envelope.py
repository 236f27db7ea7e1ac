"""Envelope encryption and the encrypted fields, on both key stores: round trips, and failing closed."""

from __future__ import annotations

import base64

import pytest
from django.db import connection, transaction

from authserver.crypto import DecryptionError, decrypt, encrypt, reencrypt, secret
from authserver.crypto.fields import Ciphertext, encrypted_fields
from authserver.crypto.models import DataKey
from tests.crypto.conftest import reset_crypto
from tests.crypto.held import held_secret
from tests.crypto.testapp.models import AutoPk, Other, Record

NOTE = "Ünïcode personal note: alice@example.com, +33 6 12 34 56 78"
DATA = {"email": "alice@example.com", "roles": ["admin", "ops"], "n": 3, "nested": {"ok": True, "none": None}}


def raw(model, pk, column):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk.hex if  # noqa: S608
                    connection.vendor == "sqlite" else pk])
        return cur.fetchone()[0]


def raw_set(model, pk, column, value):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {table} SET {connection.ops.quote_name(column)} = %s WHERE id = %s",  # noqa: S608
                    [value, pk.hex if connection.vendor == "sqlite" else pk])


def flip(stored: str, index: int) -> str:
    """Flip one bit of the ciphertext bytes behind a stored field value."""
    head, _, body = stored.partition(":")
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[index] ^= 0x01
    return f"{head}:{base64.urlsafe_b64encode(bytes(blob)).decode()}"


@pytest.mark.django_db
def test_every_encrypted_field_round_trips(backend):
    fields = {f.label for _, f in encrypted_fields()}
    assert {"crypto_testapp.Record.note", "crypto_testapp.Record.data", "crypto_testapp.Other.secret"} <= fields

    rec = Record.objects.create(name="alice", note=NOTE, data=DATA)
    other = Other.objects.create(secret="s3cr3t-value")
    empty = Record.objects.create(name="nobody")

    reset_crypto()  # decrypt with nothing cached: unwrap through the key store again
    loaded = Record.objects.get(pk=rec.pk)
    assert loaded.note == NOTE
    assert loaded.data == DATA
    assert Other.objects.get(pk=other.pk).secret == "s3cr3t-value"
    assert Record.objects.get(pk=empty.pk).note is None and Record.objects.get(pk=empty.pk).data is None

    stored_note, stored_data = raw(Record, rec.pk, "note"), raw(Record, rec.pk, "data")
    for stored in (stored_note, stored_data, raw(Other, other.pk, "secret")):
        assert stored.startswith("v1:")
    assert "alice@example.com" not in stored_note + stored_data
    assert raw(Record, empty.pk, "note") is None

    # Update; then an unchanged save keeps the same ciphertext; a changed value gets a new one.
    loaded.note = "changed"
    loaded.data = [1, "two", {"3": 4.5}]
    loaded.save()
    again = Record.objects.get(pk=rec.pk)
    assert (again.note, again.data) == ("changed", [1, "two", {"3": 4.5}])
    before = raw(Record, rec.pk, "note")
    Record.objects.get(pk=rec.pk).save()
    assert raw(Record, rec.pk, "note") == before

    # One data key per purpose (per KEK version), all wrapped.
    purposes = set(DataKey.objects.values_list("purpose", flat=True))
    assert {"crypto_testapp.record.note", "crypto_testapp.record.data", "test.other"} <= purposes

    # values_list gives the stored ciphertext, never plaintext.
    (value,) = Record.objects.filter(pk=rec.pk).values_list("note", flat=True)
    assert isinstance(value, Ciphertext) and value.startswith("v1:")


@pytest.mark.django_db
def test_api_round_trip_and_binding(backend):
    blob = encrypt("audit.personal", b"alice@example.com", b"event:1")
    assert decrypt("audit.personal", blob, b"event:1") == b"alice@example.com"
    assert b"alice" not in blob
    assert blob[1:5] == (1).to_bytes(4, "big")  # the KEK version, beside the ciphertext
    with pytest.raises(DecryptionError):
        decrypt("audit.personal", blob, b"event:2")
    with pytest.raises(DecryptionError):
        decrypt("audit.other", blob, b"event:1")
    assert reencrypt("audit.personal", blob, b"event:1") is None  # already current
    with pytest.raises(ValueError):
        encrypt("secret:held-example", b"x", b"")
    with pytest.raises(ValueError):
        encrypt("Bad Purpose", b"x", b"")


@pytest.mark.django_db
def test_swapped_rows_fail_to_decrypt(backend):
    a = Record.objects.create(note="note of A", data={"owner": "A"})
    b = Record.objects.create(note="note of B", data={"owner": "B"})
    other = Other.objects.create(secret="other secret")
    # Copy A's ciphertexts onto B, and a Record.note ciphertext into another table and column.
    raw_set(Record, b.pk, "note", raw(Record, a.pk, "note"))
    raw_set(Record, b.pk, "data", raw(Record, a.pk, "data"))
    raw_set(Other, other.pk, "secret", raw(Record, a.pk, "note"))
    raw_set(Record, a.pk, "data", raw(Record, a.pk, "note"))  # column swap within the row
    reset_crypto()
    loaded_b = Record.objects.get(pk=b.pk)
    with pytest.raises(DecryptionError):
        loaded_b.note  # noqa: B018
    with pytest.raises(DecryptionError):
        loaded_b.data  # noqa: B018
    with pytest.raises(DecryptionError):
        Other.objects.get(pk=other.pk).secret  # noqa: B018
    loaded_a = Record.objects.get(pk=a.pk)
    assert loaded_a.note == "note of A"
    with pytest.raises(DecryptionError):
        loaded_a.data  # noqa: B018


@pytest.mark.django_db
def test_flipped_bits_and_wrong_versions_fail_closed(backend):
    rec = Record.objects.create(note="integrity matters")
    stored = raw(Record, rec.pk, "note")
    size = len(base64.urlsafe_b64decode(stored.partition(":")[2]))
    # format byte, version, nonce, body, tag
    for index in (0, 1, 4, 5, 16, 17, size - 17, size - 1):
        raw_set(Record, rec.pk, "note", flip(stored, index))
        with pytest.raises(DecryptionError):
            Record.objects.get(pk=rec.pk).note  # noqa: B018
    # The version prefix is authenticated too, and an unknown version is refused.
    for bad in ("v2:" + stored.partition(":")[2], "v1:" + stored.partition(":")[2][:-4], "v1:!!!!", "garbage"):
        raw_set(Record, rec.pk, "note", bad)
        with pytest.raises(DecryptionError):
            Record.objects.get(pk=rec.pk).note  # noqa: B018
    blob = encrypt("audit", b"payload", b"aad")
    relabelled = blob[:1] + (7).to_bytes(4, "big") + blob[5:]
    with pytest.raises(DecryptionError, match="KEK version 7"):
        decrypt("audit", relabelled, b"aad")
    raw_set(Record, rec.pk, "note", stored)
    assert Record.objects.get(pk=rec.pk).note == "integrity matters"

    # A tampered wrapped data key fails too (nothing cached).
    row = DataKey.objects.get(purpose="crypto_testapp.record.note")
    wrapped = bytearray(row.wrapped)
    wrapped[-1] ^= 1
    DataKey.objects.filter(pk=row.pk).update(wrapped=bytes(wrapped))
    reset_crypto()
    with pytest.raises(DecryptionError):
        Record.objects.get(pk=rec.pk).note  # noqa: B018


@pytest.mark.django_db
def test_plaintext_never_written_around_save():
    rec = Record.objects.create(note="x")
    with pytest.raises(TypeError), transaction.atomic():
        Record.objects.filter(pk=rec.pk).update(note="written in clear?")
    with pytest.raises(TypeError), transaction.atomic():
        Record.objects.filter(note="x").count()
    rec.note = "y"
    with pytest.raises(TypeError), transaction.atomic():
        Record.objects.bulk_update([rec], ["note"])
    with pytest.raises(ValueError, match="primary key"):
        AutoPk.objects.create(note="pk only known after insert")
    assert Record.objects.filter(note__isnull=False).count() == 1


@pytest.mark.django_db
def test_a_held_secret_is_held_by_the_key_store(backend, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    key = held_secret()
    assert len(key) >= 32
    assert held_secret() == key
    row = DataKey.objects.get(purpose="secret:held-example")
    assert key not in bytes(row.wrapped)
    assert not (tmp_path / "held-example-key").exists()
    reset_crypto()
    assert held_secret() == key  # unwrapped again from the database


@pytest.mark.django_db
def test_legacy_plaintext_secret_file_is_adopted_then_removed(settings, tmp_path,
                                                               django_capture_on_commit_callbacks):
    settings.DATA_DIR = tmp_path
    legacy = tmp_path / "held-example-key"
    legacy.write_bytes(b"legacy-key-value-0123456789")
    legacy.chmod(0o600)
    with django_capture_on_commit_callbacks(execute=True):
        assert held_secret() == b"legacy-key-value-0123456789"
    assert not legacy.exists()
    reset_crypto()
    assert secret("held-example") == b"legacy-key-value-0123456789"
