"""Key-store fixtures: an isolated key file per test, and a real SoftHSM2 token (PKCS#11).

SoftHSM2 must be installed (.ci/run installs it): without ``softhsm2-util`` the HSM tests FAIL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from authserver.crypto import backends, envelope
from tests.jobs.conftest import WorkerProcess, _database_url

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "authserver-test"
USER_PIN = "4213-test-pin"
SO_PIN = "9876-test-so-pin"


def reset_crypto() -> None:
    backends.reset()
    envelope.reset_caches()


@pytest.fixture(autouse=True)
def isolated_key_file(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Every test starts with no key store of its own (fresh install) and no cached key."""
    path = tmp_path / "keys" / "keystore.json"
    settings.KEYSTORE = "file"
    settings.KEYSTORE_FILE = path
    reset_crypto()
    yield path
    reset_crypto()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    util = shutil.which("softhsm2-util")
    if not util or not Path(SOFTHSM_MODULE).exists():
        pytest.fail("SoftHSM2 is required for the PKCS#11 key-store tests (apt-get install softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    # Read by the module when first initialised, in this process and in any child.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN, "--so-pin", SO_PIN],
                   check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    return {"module": SOFTHSM_MODULE, "label": TOKEN_LABEL, "pin": USER_PIN, "conf": str(conf)}


@pytest.fixture
def hsm(settings: Any, softhsm: dict[str, str]) -> Iterator[dict[str, str]]:
    """Key store = the SoftHSM2 token; each test gets its own KEK label, i.e. a fresh key store."""
    settings.KEYSTORE = "pkcs11"
    settings.PKCS11_MODULE = softhsm["module"]
    settings.PKCS11_TOKEN_LABEL = softhsm["label"]
    settings.PKCS11_PIN = softhsm["pin"]
    settings.PKCS11_KEY_LABEL = f"kek-{uuid.uuid4().hex[:12]}"
    settings.PKCS11_VERSION_CACHE_SECONDS = 0.2  # the rotation job waits this long for stale writers
    reset_crypto()
    yield {**softhsm, "key_label": settings.PKCS11_KEY_LABEL}
    reset_crypto()


@pytest.fixture(params=["file", "pkcs11"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test on both key stores."""
    if request.param == "pkcs11":
        request.getfixturevalue("hsm")
    return request.param


@pytest.fixture
def crypto_worker(transactional_db: Any, tmp_path: Path, isolated_key_file: Path) -> Iterator[WorkerProcess]:
    """A real Celery worker sharing the test database, broker and key file; small rotation batches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        AUTHSERVER_TESTING="1",
        AUTHSERVER_DATA_DIR=str(django_settings.DATA_DIR),
        DATABASE_URL=_database_url(),
        AUTHSERVER_CELERY_EAGER="0",
        PYTHONUNBUFFERED="1",
        AUTHSERVER_KEYSTORE="file",
        AUTHSERVER_KEYSTORE_FILE=str(isolated_key_file),
        AUTHSERVER_CRYPTO_ROTATION_BATCH_SIZE="4",
        AUTHSERVER_CRYPTO_ROTATION_BATCH_PAUSE="0.2",
        AUTHSERVER_CRYPTO_ROTATION_STALE_SECONDS="1",
    )
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
