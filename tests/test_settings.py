"""Production mode refuses to start without its secrets; users' passwords use Argon2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "AUTHSERVER_ENV": "production",
    "AUTHSERVER_SECRET_KEY": "x" * 64,
    "DATABASE_URL": "postgres://u:p@localhost/db",
    "REDIS_URL": "redis://localhost:6379/0",
    "AUTHSERVER_ISSUER": "https://auth.example.com",
    "AUTHSERVER_ALLOWED_HOSTS": "auth.example.com",
}


def _setup(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith("PYTEST")}
    base.update(env, AUTHSERVER_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="authserver.settings")
    return subprocess.run(
        [sys.executable, "-c", "from authserver import datadir; datadir.prepare(); import django; django.setup(); "
         "from django.conf import settings; "
         "print(settings.DEBUG, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE)"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=60, check=False,
    )


def test_production_starts_with_everything_set(tmp_path):
    result = _setup(PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]


@pytest.mark.parametrize("missing", sorted(PRODUCTION.keys() - {"AUTHSERVER_ENV"}))
def test_production_refuses_to_start_without(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = _setup(env, tmp_path)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr
    assert not (tmp_path / "django-secret-key").exists(), "never invents a secret in production"


def test_production_refuses_debug(tmp_path):
    result = _setup({**PRODUCTION, "AUTHSERVER_DEBUG": "1"}, tmp_path)
    assert result.returncode != 0 and "must be off in production" in result.stderr


def test_embedded_defaults_create_private_data_dir(tmp_path):
    """The first ``manage.py`` run on a fresh clone prepares the data directory, owner-only."""
    data = tmp_path / "fresh"
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("PYTEST", "AUTHSERVER_"))}
    base.update(AUTHSERVER_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="authserver.settings")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    for secret in ("django-secret-key", "admin-path"):
        assert (data / secret).stat().st_mode & 0o777 == 0o600
    for folder in ("broker", "broker/queue", "broker/processed", "broker/control", "static"):
        assert (data / folder).stat().st_mode & 0o777 == 0o700, folder


def test_importing_the_settings_writes_nothing(tmp_path):
    """Settings only read: an unprepared data directory is refused by name, and left as it was."""
    data = tmp_path / "empty"
    data.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("PYTEST", "AUTHSERVER_"))}
    base.update(AUTHSERVER_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="authserver.settings")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "the data directory is not prepared" in result.stderr
    assert list(data.iterdir()) == []
    assert not (tmp_path / "var").exists()


def test_importing_prepared_settings_writes_nothing(tmp_path):
    data = tmp_path / "data"
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("PYTEST", "AUTHSERVER_"))}
    base.update(AUTHSERVER_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="authserver.settings")
    code = """
from pathlib import Path
from authserver import datadir
config = datadir.prepare()
def snapshot():
    return sorted((str(p), p.stat().st_mode, p.stat().st_mtime_ns) for p in Path(config.data_dir).rglob("*"))
before = snapshot()
import django
django.setup()
from django.urls import reverse
reverse("admin:index")  # the URLconf reads the generated admin path
assert snapshot() == before, "importing the settings wrote to the data directory"
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_user_passwords_use_argon2_and_no_pbkdf2_is_configured():
    assert make_password("a human password").startswith("argon2")
    assert not any("PBKDF2" in hasher for hasher in settings.PASSWORD_HASHERS)
