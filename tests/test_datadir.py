"""authserver.datadir.prepare(): the explicit first-run step; the settings only read what it made."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf, datadir

PRODUCTION = {
    "AUTHSERVER_ENV": "production",
    "AUTHSERVER_SECRET_KEY": "x" * 64,
    "DATABASE_URL": "postgres://u:p@localhost/db",
    "REDIS_URL": "redis://localhost:6379/0",
    "AUTHSERVER_ISSUER": "https://auth.example.com",
    "AUTHSERVER_ALLOWED_HOSTS": "auth.example.com",
}


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*")}


def test_prepare_creates_an_owner_only_data_dir_and_is_idempotent(tmp_path):
    config = conf.load({"AUTHSERVER_DATA_DIR": str(tmp_path / "data")}, testing=False)
    datadir.prepare(config=config)
    tree = _tree(config.data_dir)
    assert tree == {
        "django-secret-key": 0o600, "admin-path": 0o600, "api-path": 0o600, "static": 0o700,
        "broker": 0o700, "broker/queue": 0o700, "broker/processed": 0o700, "broker/control": 0o700,
    }
    secret, admin = datadir.django_secret_key(config=config), datadir.admin_path(config=config)
    assert len(secret) >= 64 and re.fullmatch(r"admin-[A-Za-z0-9]{8,16}", admin)
    api = datadir.api_path(config=config)
    assert re.fullmatch(r"[a-z0-9]{16,}", api)  # the management API's path (issue 15, C4)

    datadir.prepare(config=config)  # a second start, or a second process racing the first
    assert _tree(config.data_dir) == tree
    assert (datadir.django_secret_key(config=config), datadir.admin_path(config=config)) == (secret, admin)
    assert datadir.api_path(config=config) == api


def test_configured_values_are_never_shadowed_by_generated_files(tmp_path):
    config = conf.load({"AUTHSERVER_DATA_DIR": str(tmp_path), "AUTHSERVER_SECRET_KEY": "s" * 50,
                        "AUTHSERVER_ADMIN_PATH": "ops", "AUTHSERVER_API_PATH": "/api/v1/",
                        "REDIS_URL": "redis://localhost:6379/0"}, testing=False)
    datadir.prepare(config=config)
    assert set(_tree(tmp_path)) == {"static"}
    assert datadir.django_secret_key(config=config) == "s" * 50 and datadir.admin_path(config=config) == "ops"
    assert datadir.api_path(config=config) == "api/v1"  # the old path, restored


def test_production_prepares_no_secret(tmp_path):
    config = datadir.prepare(config=conf.load({**PRODUCTION, "AUTHSERVER_DATA_DIR": str(tmp_path)}, testing=False))
    assert not (tmp_path / "django-secret-key").exists()
    assert (tmp_path / "admin-path").exists()  # no AUTHSERVER_ADMIN_PATH: generated, as before
    assert config.production


def test_prepare_reads_the_environment_and_writes_nothing_when_it_is_invalid(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTHSERVER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_SECONDS", "ten")
    with pytest.raises(ImproperlyConfigured, match="AUTHSERVER_ACCESS_TOKEN_SECONDS"):
        datadir.prepare()
    assert not (tmp_path / "data").exists()


def test_an_unprepared_or_exposed_secret_is_refused(tmp_path):
    config = conf.load({"AUTHSERVER_DATA_DIR": str(tmp_path)}, testing=False)
    with pytest.raises(ImproperlyConfigured, match="data directory is not prepared"):
        datadir.django_secret_key(config=config)
    datadir.prepare(config=config)
    (tmp_path / "admin-path").chmod(0o640)
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        datadir.admin_path(config=config)
