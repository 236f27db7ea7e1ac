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
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
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
    data = tmp_path / "fresh"
    env = {"AUTHSERVER_DATA_DIR": str(data)}
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith("PYTEST")}
    base.update(env, DJANGO_SETTINGS_MODULE="authserver.settings")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "django-secret-key").stat().st_mode & 0o777 == 0o600


def test_user_passwords_use_argon2_and_no_pbkdf2_is_configured():
    assert make_password("a human password").startswith("argon2")
    assert not any("PBKDF2" in hasher for hasher in settings.PASSWORD_HASHERS)
