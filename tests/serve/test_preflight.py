"""``manage.py serve`` checks its prerequisites before any first-run setup (issue 14): with its port
taken (or the database, Redis or the HSM library missing) it exits at once with one message naming
every problem and its fix, and has created no admin, password or certificate."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authserver.serve import preflight
from authserver.serve.net import Bind

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-never-shown-5e7a"  # noqa: S105 - a marker, not a credential


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(data_dir: Path, port: int, **extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS")) and k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(AUTHSERVER_DATA_DIR=str(data_dir), **extra)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}"],  # noqa: S603
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    return done, time.monotonic() - started


def _nothing_set_up(data_dir: Path, output: str) -> None:
    assert "Created superuser" not in output and "with password:" not in output, output
    assert not (data_dir / "tls").exists()  # no certificate
    assert not (data_dir / "db.sqlite3").exists()  # not even migrated: no admin user in it
    assert not (data_dir / "keystore.json").exists()
    assert "granian" not in output and "Traceback" not in output, output


def test_a_taken_port_stops_serve_before_any_setup(tmp_path, taken_port):
    data_dir = tmp_path / "data"
    done, seconds = _serve(data_dir, taken_port)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"port {taken_port} on 127.0.0.1 is already in use" in done.stderr
    assert f"--bind 127.0.0.1:{taken_port + 1}" in done.stderr  # the fix, ready to paste
    _nothing_set_up(data_dir, output)
    # No web server started and retried: the time is Django's start-up alone (the old serve spent
    # it on migrating, the superuser, the certificate and granian's failed start on top).
    assert seconds < 15, seconds


def test_every_missing_prerequisite_is_named_at_once(tmp_path, taken_port):
    data_dir = tmp_path / "data"
    down = _closed_port()
    done, _ = _serve(
        data_dir, taken_port,
        DATABASE_URL=f"postgres://authserver:{SECRET}@127.0.0.1:{down}/authserver",
        REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{down}/0",
        AUTHSERVER_KEYSTORE="pkcs11", AUTHSERVER_PKCS11_MODULE=str(tmp_path / "libsofthsm2.so"),
        AUTHSERVER_PKCS11_TOKEN_LABEL="authserver", AUTHSERVER_PKCS11_PIN=SECRET,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "serve cannot start: 4 problems" in done.stderr, output
    for expected in (f"port {taken_port} on 127.0.0.1 is already in use", "DATABASE_URL: the database does not answer",
                     "REDIS_URL: Redis does not answer", f"AUTHSERVER_PKCS11_MODULE: {tmp_path}/libsofthsm2.so does "
                     "not exist", "apt install softhsm2"):
        assert expected in done.stderr, output
    assert SECRET not in output
    _nothing_set_up(data_dir, output)


# --- the checks, one by one ------------------------------------------------------------------
def test_address_free(taken_port):
    found = preflight.address_free(Bind("127.0.0.1", taken_port))
    assert found is not None and found.name == "--bind" and str(taken_port) in found.message
    assert preflight.address_free(Bind("127.0.0.1", _closed_port())) is None
    assert "not an address of this machine" in preflight.address_free(Bind("no-such-host.invalid", 8443)).message


def test_an_unwritable_directory(tmp_path):
    (tmp_path / "file").write_text("")
    found = preflight.writable("AUTHSERVER_DATA_DIR", tmp_path / "file")
    assert found is not None and "cannot write in" in found.message
    assert preflight.writable("AUTHSERVER_DATA_DIR", tmp_path) is None
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe left nothing


def test_a_damaged_key_file_is_named(tmp_path, settings):
    key_file = tmp_path / "keystore.json"
    key_file.write_text("{not json")
    settings.KEYSTORE_FILE = key_file
    (found,) = preflight.key_store()
    assert found.name == "AUTHSERVER_KEYSTORE_FILE" and "restore" in found.fix
    key_file.unlink()
    assert preflight.key_store() == []  # a fresh install: the key is made after the migration


def test_an_exposed_key_or_a_damaged_certificate(tmp_path):
    assert preflight.tls_files(tmp_path) == []  # a first run: serve makes them
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("key")
    (tmp_path / "key.pem").chmod(0o644)
    (exposed,) = preflight.tls_files(tmp_path)
    assert "must not be readable by group or others" in exposed.message and exposed.fix.startswith("chmod 600")
    (tmp_path / "key.pem").chmod(0o600)
    (damaged,) = preflight.tls_files(tmp_path)
    assert "is not a readable PEM certificate" in damaged.message
