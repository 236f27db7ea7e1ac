"""What ``manage.py serve`` checks before it changes anything (issue 14).

First-run setup (the migration, the superuser and its one-time password, the certificate) happens
once; a serve that then cannot listen leaves an operator with a password shown for a server that
never ran. So serve first checks every prerequisite it can without writing: the address it is to
listen on is free, the data directory is writable, the key store is readable (the HSM's PKCS#11
library present), the database and Redis answer. Every problem found is reported at once, in the
configuration errors' format (:class:`authserver.conf_parsers.ConfigurationErrors`): what is at
fault, what is wrong, how to fix it.

Nothing here writes, except a probe file created and removed at once to prove a directory writable
(``os.access`` says yes to root even on a read-only mount).
"""

from __future__ import annotations

import errno
import socket
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from authserver.conf_parsers import Problem
from authserver.serve.net import Bind

CONNECT_TIMEOUT = 3.0  # seconds, for the database and Redis probes


def problems(*, bind: Bind, data_dir: Path, use_tls: bool) -> list[Problem]:
    """Everything that would stop serve, found without changing anything."""
    found = [p for p in (address_free(bind), writable("AUTHSERVER_DATA_DIR", data_dir)) if p]
    for sub in (data_dir / "tls", data_dir / "run") if use_tls else (data_dir / "run",):
        if sub.exists() and (problem := writable("AUTHSERVER_DATA_DIR", sub)):
            found.append(problem)
    if use_tls:
        found += tls_files(data_dir / "tls")
    found += key_store()
    found += database()
    found += redis()
    return found


def address_free(bind: Bind) -> Problem | None:
    """Bind (and at once release) the address serve's web server is to listen on."""
    where = f"{bind.host or '0.0.0.0'}:{bind.port}"  # noqa: S104 - reported, not bound
    other = f"{'[' + bind.host + ']' if ':' in bind.host else bind.host}:{bind.port + 1}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            bind.host or None, bind.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return Problem("--bind", f"--bind {where}: {bind.host!r} is not an address of this machine ({exc.strerror})",
                       "give an address or host name of this machine, e.g. --bind 127.0.0.1:8443")
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Problem("--bind", f"port {bind.port} on {bind.host or 'every interface'} is already in use "
                               "(another program, or another serve with another data directory, listens there)",
                               f"stop that program, or choose a free port: manage.py serve --bind {other}")
            if exc.errno == errno.EACCES:
                return Problem("--bind", f"--bind {where}: port {bind.port} needs privileges this user lacks",
                               f"use a port above 1023 (e.g. --bind {other.rsplit(':', 1)[0]}:8443) and "
                               "forward to it, or grant CAP_NET_BIND_SERVICE")
            return Problem("--bind", f"--bind {where}: cannot listen there ({exc.strerror})",
                           "give an address of this machine, e.g. --bind 127.0.0.1:8443")
    return None


def writable(name: str, directory: Path) -> Problem | None:
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".serve-probe-"):
            pass
    except OSError as exc:
        return Problem(name, f"{name}: cannot write in {directory} ({exc.strerror or exc})",
                       f"make {directory} writable by this user (mode 0700, owned by it), or point {name} elsewhere")
    return None


def tls_files(tls_dir: Path) -> list[Problem]:
    """An existing certificate and key that serve would refuse (a first run has none: it makes them)."""
    from cryptography import x509

    cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
    if not (cert.exists() and key.exists()):
        return []
    if key.stat().st_mode & 0o077:
        return [Problem("AUTHSERVER_DATA_DIR", f"{key} must not be readable by group or others", f"chmod 600 {key}")]
    try:
        x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        return [Problem("AUTHSERVER_DATA_DIR", f"{cert} is not a readable PEM certificate ({exc})",
                        "put your certificate there, or delete cert.pem and key.pem for a new self-signed one")]
    return []


def key_store() -> list[Problem]:
    from authserver.crypto.backends import get_keystore
    from authserver.crypto.keystore import KeyStoreMissing

    if settings.KEYSTORE == "pkcs11" and not Path(settings.PKCS11_MODULE).is_file():
        return [Problem("AUTHSERVER_PKCS11_MODULE", f"AUTHSERVER_PKCS11_MODULE: {settings.PKCS11_MODULE} does not "
                        "exist", "install the HSM's PKCS#11 library (SoftHSM: apt install softhsm2, then "
                        "/usr/lib/softhsm/libsofthsm2.so) or correct the path")]
    try:
        get_keystore().versions(fresh=True)
    except KeyStoreMissing:
        return []  # a fresh install: serve creates the first key after the migration
    except ImproperlyConfigured as exc:  # KeyStoreError: unreadable, damaged, the token refused
        name = "AUTHSERVER_KEYSTORE_FILE" if settings.KEYSTORE == "file" else "AUTHSERVER_PKCS11_TOKEN_LABEL"
        return [Problem(name, f"key store: {exc}", "correct the AUTHSERVER_KEYSTORE* settings, or restore the "
                        "key store from its backup (docs/operations.md)")]
    return []


def database() -> list[Problem]:
    connection = connections["default"]
    if connection.vendor == "sqlite":  # opening it would create it: check its directory instead
        problem = writable("AUTHSERVER_DATA_DIR", Path(connection.settings_dict["NAME"]).parent)
        return [problem] if problem else []
    options = connection.settings_dict.setdefault("OPTIONS", {})
    before = options.get("connect_timeout")
    options["connect_timeout"] = int(CONNECT_TIMEOUT)
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        # libpq's first line names the host and the reason, never the password.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Problem("DATABASE_URL", f"DATABASE_URL: the database does not answer ({reason})",
                        "start PostgreSQL, or correct DATABASE_URL (host, port, user, password, database name)")]
    finally:
        connection.close()
        if before is None:
            options.pop("connect_timeout", None)
        else:
            options["connect_timeout"] = before
    return []


def redis() -> list[Problem]:
    if not settings.REDIS_URL:
        return []
    import redis as redis_client

    client = redis_client.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CONNECT_TIMEOUT,
                                         socket_timeout=CONNECT_TIMEOUT)
    try:
        client.ping()
    except redis_client.RedisError as exc:  # its message names host and port, never the password
        return [Problem("REDIS_URL", f"REDIS_URL: Redis does not answer ({type(exc).__name__}: {exc})",
                        "start Redis, or correct REDIS_URL (host, port, database number, password)")]
    finally:
        client.close()
    return []
