"""The data directory: where the embedded defaults keep their state.

Everything an operator must protect on a single-machine install lives here (SQLite database,
Django secret key, TLS key and certificate, embedded broker queues), so it is created owner-only
(0700) and every secret file in it 0600.

Importing the settings only reads it. :func:`prepare` creates it, the first time, before Django
starts: ``manage.py``, the WSGI app and the Celery app call it, so every process ``serve`` starts
does too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from authserver import conf
from authserver.conf import BASE_DIR, AuthServerConfig
from authserver.conf_parsers import ConfigurationErrors, Problem

__all__ = ["BASE_DIR", "admin_path", "api_path", "django_secret_key", "prepare", "read_secret", "unwritable",
           "write_secret_file"]

SECRET_KEY_FILE = "django-secret-key"  # noqa: S105 - a file name
ADMIN_PATH_FILE = "admin-path"
API_PATH_FILE = "api-path"
BROKER_FOLDERS = ("queue", "processed", "control")


def write_secret_file(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 atomically: the secret is never world-readable, even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def _create_secret(path: Path, nbytes: int) -> None:
    try:
        write_secret_file(path, secrets.token_urlsafe(nbytes).encode())
    except FileExistsError:
        pass  # another process started at the same time won the race; its secret stands


def read_secret(path: Path) -> str:
    """A generated secret, refused if group or others can read it (ASVS 13.3)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"{path} does not exist: the data directory is not prepared. manage.py, authserver.wsgi and "
            "the Celery app prepare it on start; elsewhere call authserver.datadir.prepare() before "
            "django.setup()") from None
    if mode & 0o077:
        raise ConfigurationErrors([Problem("AUTHSERVER_DATA_DIR", f"{path} must not be readable by group or others",
                                           f"chmod 600 {path}")])
    return path.read_text().strip()


def django_secret_key(*, config: AuthServerConfig) -> str:
    return config.secret_key or read_secret(config.data_dir / SECRET_KEY_FILE)


def admin_path(*, config: AuthServerConfig) -> str:
    """The admin's URL path: configured, or unguessable and stable per installation (docs/decisions/0009)."""
    if config.admin_path:
        return config.admin_path
    generated = read_secret(config.data_dir / ADMIN_PATH_FILE)
    return "admin-" + generated.replace("_", "").replace("-", "")[:16]


def api_path(*, config: AuthServerConfig) -> str:
    """The management API's URL path: configured (``api/v1`` restores the old one), or 20 random lower-case
    alphanumerics stable per installation (issue 15, docs/endpoints.md)."""
    if config.endpoints.api_path:
        return config.endpoints.api_path
    return read_secret(config.data_dir / API_PATH_FILE)


def _create_api_path(path: Path) -> None:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    try:
        write_secret_file(path, "".join(secrets.choice(alphabet) for _ in range(20)).encode())
    except FileExistsError:
        pass  # another process started at the same time won the race; its path stands


def prepare(*, config: AuthServerConfig | None = None) -> AuthServerConfig:
    """Create the data directory and what the settings read from it; idempotent, safe to race.

    Only what the configuration leaves to the data directory is generated: a configured secret key
    or admin path is never shadowed by a file, and production (which requires its secrets) gets
    none. Raises ConfigurationErrors, before writing anything, if the environment is invalid, and
    names AUTHSERVER_DATA_DIR if the directory cannot be created or written.
    """
    config = config or conf.load(os.environ)
    try:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not config.secret_key:
            _create_secret(config.data_dir / SECRET_KEY_FILE, nbytes=48)
        if not config.admin_path:
            _create_secret(config.data_dir / ADMIN_PATH_FILE, nbytes=12)
        if not config.endpoints.api_path:
            _create_api_path(config.data_dir / API_PATH_FILE)
        if not config.redis_url:
            config.broker_dir.mkdir(mode=0o700, exist_ok=True)
            for folder in BROKER_FOLDERS:
                (config.broker_dir / folder).mkdir(mode=0o700, exist_ok=True)
        # WhiteNoise warns about a missing STATIC_ROOT; collectstatic fills it in production.
        config.static_root.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigurationErrors([unwritable(config.data_dir, exc)]) from None
    return config


def unwritable(data_dir: Path, exc: OSError) -> Problem:
    """The data directory (or something in it) cannot be created or written."""
    where = exc.filename or data_dir
    return Problem("AUTHSERVER_DATA_DIR", f"AUTHSERVER_DATA_DIR: cannot write {where} ({exc.strerror or exc})",
                   f"point AUTHSERVER_DATA_DIR at a directory this user (uid {os.getuid()}) can write, or create "
                   f"{data_dir} with mode 0700 owned by it")
