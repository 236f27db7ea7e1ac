"""KEK rotation: status, re-encryption, retirement; and a real worker killed midway, then resumed."""

from __future__ import annotations

import json
import random
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from authserver.crypto import decrypt, encrypt, tasks
from authserver.crypto.backends import get_keystore
from authserver.crypto.models import DataKey, Rotation, RotationStatus
from tests.crypto.conftest import reset_crypto
from tests.crypto.held import held_secret
from tests.crypto.testapp.models import Other, Record


def keys_status() -> dict:
    out = StringIO()
    call_command("keys", "status", stdout=out)
    return json.loads(out.getvalue())


def version_entry(report: dict, version: int) -> dict:
    return next(v for v in report["versions"] if v["version"] == version)


def stored_versions() -> set[str]:
    notes = Record.objects.exclude(note__isnull=True).values_list("note", flat=True)
    data = Record.objects.exclude(data__isnull=True).values_list("data", flat=True)
    return {value.partition(":")[0] for value in [*notes, *data]}


@pytest.mark.django_db
def test_rotate_status_and_retire(backend):
    records = {Record.objects.create(note=f"note {i}", data={"i": i}).pk: i for i in range(7)}
    other = Other.objects.create(secret="other")
    api_blob = encrypt("audit.personal", b"kept outside the fields", b"row-1")
    signing = held_secret()

    report = keys_status()
    assert report["backend"] == backend and report["current_version"] == 1
    v1 = version_entry(report, 1)
    assert v1["rows"] == 15 and v1["fields"]["crypto_testapp.Record.note"] == 7
    assert v1["secrets"] == ["secret:held-example"] and v1["external_data_keys"] == ["audit.personal"]

    call_command("keys", "rotate", "--foreground", stdout=StringIO())
    assert get_keystore().versions() == [1, 2]
    assert stored_versions() == {"v2"}
    assert Other.objects.filter(secret__startswith="v2:").count() == 1
    reset_crypto()
    for pk, i in records.items():
        rec = Record.objects.get(pk=pk)
        assert (rec.note, rec.data) == (f"note {i}", {"i": i})
    assert Other.objects.get(pk=other.pk).secret == "other"
    assert held_secret() == signing  # a held secret is re-wrapped, not changed
    assert set(DataKey.objects.filter(purpose="secret:held-example").values_list("kek_version", flat=True)) == {2}

    report = keys_status()
    v1 = version_entry(report, 1)
    assert v1["rows"] == 0 and v1["secrets"] == []
    assert v1["external_data_keys"] == ["audit.personal"] and not v1["retirable"]
    assert report["rotation"]["status"] == "done" and report["rotation"]["counts"]["rows_reencrypted"] == 15

    # Data kept through encrypt() blocks retirement until its owner re-encrypts it.
    with pytest.raises(CommandError, match="audit.personal"):
        call_command("keys", "retire", "1")
    with pytest.raises(CommandError, match="current version"):
        call_command("keys", "retire", "2")
    from authserver.crypto import reencrypt

    api_blob = reencrypt("audit.personal", api_blob, b"row-1")
    DataKey.objects.filter(purpose="audit.personal", kek_version=1).delete()
    assert version_entry(keys_status(), 1)["retirable"]
    call_command("keys", "retire", "1", stdout=StringIO())

    assert get_keystore().versions() == [2]
    assert not DataKey.objects.filter(kek_version=1).exists()
    reset_crypto()
    assert decrypt("audit.personal", api_blob, b"row-1") == b"kept outside the fields"
    assert {Record.objects.get(pk=pk).note for pk in records} == {f"note {i}" for i in range(7)}
    assert held_secret() == signing
    with pytest.raises(CommandError, match="not in"):
        call_command("keys", "retire", "1")


@pytest.mark.django_db
def test_a_row_under_a_retired_version_does_not_decrypt():
    rec = Record.objects.create(note="old")
    stale = Record.objects.filter(pk=rec.pk).values_list("note", flat=True)[0]
    call_command("keys", "rotate", "--foreground", stdout=StringIO())
    call_command("keys", "retire", "1", stdout=StringIO())
    Record.objects.filter(pk=rec.pk).update(note=stale)  # a stale v1 ciphertext put back
    reset_crypto()
    from authserver.crypto import DecryptionError

    with pytest.raises(DecryptionError, match="KEK version 1"):
        Record.objects.get(pk=rec.pk).note  # noqa: B018


def test_rotation_survives_a_killed_worker_under_concurrent_reads_and_writes(crypto_worker):
    rng = random.Random(7)
    expected: dict = {}
    for i in range(24):
        rec = Record.objects.create(note=f"note {i}", data={"i": i, "tags": ["a", "b"]})
        expected[rec.pk] = (rec.note, rec.data)
    signing = held_secret()
    initial = 2 * len(expected)

    def check_all_readable() -> None:
        for rec in Record.objects.all():
            assert (rec.note, rec.data) == expected[rec.pk]

    def write_some(tag: str) -> None:
        for pk in rng.sample(sorted(expected), 2):
            rec = Record.objects.get(pk=pk)
            rec.note = f"{rec.note} +{tag}"
            rec.save()
            expected[pk] = (rec.note, rec.data)
        rec = Record.objects.create(note=f"new {tag}", data={"new": tag})
        expected[rec.pk] = (rec.note, rec.data)

    call_command("keys", "rotate", stdout=StringIO())  # enqueued for the real worker
    rotation = Rotation.objects.get()
    deadline = time.monotonic() + 30
    step = 0
    while (current := Rotation.objects.get()).counts.get("rows_reencrypted", 0) < 12:
        assert time.monotonic() < deadline, (current.status, current.counts,
                                             crypto_worker.log_path.read_text()[-3000:])
        check_all_readable()
        if step % 3 == 0:
            write_some(f"a{step}")
        step += 1
        time.sleep(0.1)
    crypto_worker.kill()  # SIGKILL midway

    rotation.refresh_from_db()
    assert rotation.status == RotationStatus.RUNNING
    assert stored_versions() == {"v1", "v2"}  # really interrupted midway
    check_all_readable()
    write_some("while-dead")

    crypto_worker.start()
    # What beat does every minute: the reconcile sweep re-enqueues a run whose heartbeat went
    # quiet for longer than CRYPTO_ROTATION_STALE_SECONDS (1 s here).
    deadline = time.monotonic() + 40
    next_sweep = time.monotonic() + 1.2
    while (current := Rotation.objects.get()).status != RotationStatus.DONE:
        assert time.monotonic() < deadline, (current.status, current.counts,
                                             crypto_worker.log_path.read_text()[-3000:])
        if time.monotonic() >= next_sweep:
            tasks.reconcile.delay()
            next_sweep = time.monotonic() + 5
        check_all_readable()
        if step % 3 == 0:
            write_some(f"b{step}")
        step += 1
        time.sleep(0.1)

    reset_crypto()
    check_all_readable()
    assert stored_versions() == {"v2"}
    counts = Rotation.objects.get().counts
    # Each row moved from v1 to v2 at most once (rows rewritten by the test first needed no move).
    assert 0 < counts["rows_reencrypted"] <= initial
    assert counts.get("undecryptable", 0) == 0
    assert held_secret() == signing
    assert version_entry(keys_status(), 1)["retirable"]
    call_command("keys", "retire", "1", stdout=StringIO())
    reset_crypto()
    check_all_readable()
