"""Key stores: created only on a fresh install, owner-only, and a missing or damaged one fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from authserver.crypto import KeyStoreError, encrypt, keystore_ready
from authserver.crypto.backends import check_configuration, get_keystore
from tests.crypto.conftest import reset_crypto
from tests.crypto.testapp.models import Record
from tests.jobs.conftest import ROOT, _database_url


def manage(*args: str, key_file: Path, database: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(AUTHSERVER_TESTING="1", AUTHSERVER_DATA_DIR=str(settings.DATA_DIR), AUTHSERVER_KEYSTORE="file",
               AUTHSERVER_KEYSTORE_FILE=str(key_file))
    if database:
        env["DATABASE_URL"] = _database_url()
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.django_db
def test_fresh_install_creates_an_owner_only_key_file(isolated_key_file):
    assert not isolated_key_file.exists()
    store = keystore_ready()
    assert isolated_key_file.stat().st_mode & 0o777 == 0o600
    assert store.versions() == [1]
    doc = json.loads(isolated_key_file.read_text())
    assert set(doc["keys"]) == {"1"}


@pytest.mark.django_db
def test_loose_permissions_are_refused(isolated_key_file):
    keystore_ready()
    isolated_key_file.chmod(0o644)
    reset_crypto()
    with pytest.raises(KeyStoreError, match="chmod 600"):
        keystore_ready()
    with pytest.raises(KeyStoreError, match="chmod 600"):
        check_configuration()  # what AppConfig.ready runs: the app refuses to start at all


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["garbage", "bad-check", "empty", "truncated"])
def test_corrupt_key_file_is_refused_never_replaced(isolated_key_file, damage):
    Record.objects.create(note="data that needs the key")
    original = isolated_key_file.read_text()
    doc = json.loads(original)
    if damage == "garbage":
        text = "not json at all"
    elif damage == "bad-check":
        doc["keys"]["1"]["check"] = "0" * 16
        text = json.dumps(doc)
    elif damage == "empty":
        text = ""
    else:
        text = original[: len(original) // 2]
    isolated_key_file.write_text(text)
    reset_crypto()
    with pytest.raises(KeyStoreError, match="corrupt"):
        encrypt("x", b"y", b"z")
    assert isolated_key_file.read_text() == text  # never overwritten with a new key


@pytest.mark.django_db(transaction=True)
def test_startup_with_missing_or_corrupt_key_store_fails_clearly(isolated_key_file):
    Record.objects.create(note="encrypted before the key file was lost")

    missing = isolated_key_file.with_name("moved-away.json")
    result = manage("keys", "check", key_file=missing)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "wrapped data key" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()  # no new key was generated

    corrupt = isolated_key_file.with_name("corrupt.json")
    corrupt.write_text('{"format": "authserver-keystore", "version": 1, "keys": {}}')
    corrupt.chmod(0o600)
    result = manage("check", key_file=corrupt, database=False)  # any command: refused at startup
    assert result.returncode != 0 and "is corrupt" in result.stderr


@pytest.mark.django_db
def test_missing_key_store_with_data_is_an_error_in_process(isolated_key_file):
    Record.objects.create(note="x")
    isolated_key_file.unlink()
    reset_crypto()
    with pytest.raises(KeyStoreError, match="will not be generated"):
        Record.objects.create(note="y")
    assert not isolated_key_file.exists()


@pytest.mark.django_db
def test_hsm_kek_never_leaves_the_token(hsm):
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    Record.objects.create(note="held by the HSM")
    store = get_keystore()
    assert store.versions() == [1]
    kek = store._key(1)
    assert kek[Attribute.SENSITIVE] is True and kek[Attribute.EXTRACTABLE] is False
    with pytest.raises(AttributeSensitive):
        kek[Attribute.VALUE]  # noqa: B018
    assert not Path(settings.KEYSTORE_FILE).exists()  # nothing fell back to the file store


@pytest.mark.django_db
def test_hsm_missing_key_or_token_fails_clearly(hsm, settings):
    Record.objects.create(note="x")
    settings.PKCS11_KEY_LABEL = "some-other-label"  # a token without our KEK
    reset_crypto()
    with pytest.raises(KeyStoreError, match="will not be generated"):
        Record.objects.create(note="y")
    settings.PKCS11_TOKEN_LABEL = "no-such-token"
    reset_crypto()
    with pytest.raises(KeyStoreError, match="NoSuchToken"):
        keystore_ready()


def test_pkcs11_settings_are_required():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(AUTHSERVER_KEYSTORE="pkcs11", AUTHSERVER_TESTING="1", AUTHSERVER_DATA_DIR=str(settings.DATA_DIR))
    for name in ("AUTHSERVER_PKCS11_MODULE", "AUTHSERVER_PKCS11_TOKEN_LABEL", "AUTHSERVER_PKCS11_PIN"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "AUTHSERVER_PKCS11_PIN" in result.stderr
