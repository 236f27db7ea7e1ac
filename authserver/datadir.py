"""The data directory: where the embedded defaults keep their state.

Everything an operator must protect on a single-machine install lives here (SQLite database,
Django secret key, TLS key and certificate, embedded broker queues), so it is created owner-only
(0700) and every secret file in it 0600.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def data_dir(default: Path | None = None) -> Path:
    path = Path(os.environ.get("AUTHSERVER_DATA_DIR", default or BASE_DIR / "var")).resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_secret_file(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 atomically: the secret is never world-readable, even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def read_or_create_secret(name: str, nbytes: int = 48) -> str:
    """A per-installation secret kept in the data directory, generated on first use."""
    path = data_dir() / name
    try:
        write_secret_file(path, secrets.token_urlsafe(nbytes).encode())
    except FileExistsError:
        pass
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} must not be readable by group or others (chmod 600 it)")
    return path.read_text().strip()
