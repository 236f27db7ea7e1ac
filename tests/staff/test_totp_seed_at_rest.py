"""Authenticator seeds are encrypted at rest (authserver.staff.models.TOTPDevice): the column holds
a ciphertext bound to the row, and the migration that replaced django-otp's ``otp_totp`` table
moved every seed into it and left no plaintext behind."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection
from django_otp.oath import totp

from authserver.staff.models import TOTPDevice
from authserver.staff.services import totp_device_pending
from tests.factories import UserFactory

migration = importlib.import_module("authserver.staff.migrations.0002_totp_seeds_encrypted")


def _stored_key(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM staff_totpdevice WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_the_seed_column_holds_a_ciphertext_bound_to_its_row():
    device = totp_device_pending(user=UserFactory(is_staff=True))
    stored = _stored_key(device.pk)
    assert stored.startswith("v") and device.key not in stored and device.key.upper() not in stored
    assert TOTPDevice.objects.get(pk=device.pk).key == device.key  # decrypts for its own row
    other = totp_device_pending(user=UserFactory(is_staff=True))
    with connection.cursor() as cursor:  # the ciphertext copied onto another row does not decrypt there
        cursor.execute("UPDATE staff_totpdevice SET key = %s WHERE id = %s", [stored, other.pk])
    from authserver.crypto.keystore import DecryptionError

    with pytest.raises(DecryptionError):
        _ = TOTPDevice.objects.get(pk=other.pk).key


@pytest.mark.django_db
def test_codes_from_the_encrypted_seed_verify_once():
    device = totp_device_pending(user=UserFactory(is_staff=True))
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert TOTPDevice.objects.get(pk=device.pk).verify_token(code) is True
    assert TOTPDevice.objects.get(pk=device.pk).verify_token(code) is False  # each time step once
    assert TOTPDevice.objects.get(pk=device.pk).verify_token("000000x") is False


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_django_otp_seeds_into_ciphertexts_and_drops_the_plaintext_table():
    user = UserFactory(is_staff=True)
    seed = "3132333435363738393031323334353637383930"
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in migration.COLUMNS)
    with connection.schema_editor() as editor:
        editor.execute("CREATE TABLE otp_totp_totpdevice (id integer PRIMARY KEY, name varchar(64), "
                       "confirmed boolean, user_id integer, key varchar(80), step smallint, t0 bigint, "
                       "digits smallint, tolerance smallint, drift smallint, last_t bigint, "
                       "throttling_failure_timestamp timestamp with time zone NULL, "
                       "throttling_failure_count integer, created_at timestamp with time zone NULL, "
                       "last_used_at timestamp with time zone NULL)")
        created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        insert = f"INSERT INTO otp_totp_totpdevice (id, {columns}) VALUES (7, %s, %s, %s, %s, 30, 0, 6, 1, 0, 123, NULL, 2, %s, NULL)"  # noqa: S608, E501 - the migration's own column names
        editor.execute(insert, ["phone", True, user.pk, seed, created])
        migration.move_and_encrypt(apps, editor)
    assert "otp_totp_totpdevice" not in connection.introspection.table_names()
    device = TOTPDevice.objects.get(user=user)
    assert (device.name, device.confirmed, device.key, device.last_t, device.throttling_failure_count) == (
        "phone", True, seed, 123, 2)
    assert device.created_at == created
    assert seed not in _stored_key(device.pk)
