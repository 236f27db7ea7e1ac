"""The self-signed certificate ``serve`` uses when nothing else is configured.

EC P-256 key (PKCS#8 PEM, mode 0600) and a one-year certificate for 127.0.0.1, ::1 and localhost,
kept in ``DATA_DIR/tls``. An existing pair is reused; a certificate we generated ourselves is
replaced only when it is about to expire or lacks a name ``serve`` is about to be reached by. A
certificate an operator put there is never touched.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authserver.datadir import write_secret_file

#: Marks a certificate as one of ours, so that it may be regenerated (an operator's never is).
GENERATED_ORG = "authserver serve (self-signed)"
DEFAULT_NAMES = ("127.0.0.1", "::1", "localhost")
VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    created: bool
    warnings: tuple[str, ...] = ()


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name.lower())


def _normalise(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return name.lower()


def certificate_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    names |= {dns.lower() for dns in san.get_values_for_type(x509.DNSName)}
    return names


def _is_ours(cert: x509.Certificate) -> bool:
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(attr.value == GENERATED_ORG for attr in orgs)


def generate(names: list[str]) -> tuple[bytes, bytes]:
    """A fresh (certificate PEM, private key PEM) pair valid for ``names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, GENERATED_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(cert_path: Path, key_path: Path, names: list[str]) -> None:
    cert_pem, key_pem = generate(names)
    # Write both beside their final names, then rename: a crash never leaves a key without its
    # certificate, and the key is 0600 from the moment it exists (write_secret_file).
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    for tmp in (tmp_key, tmp_cert):
        tmp.unlink(missing_ok=True)
    write_secret_file(tmp_key, key_pem)
    tmp_cert.write_bytes(cert_pem)
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)


def ensure_certificate(tls_dir: Path, extra_names: Sequence[str] = (), check_names: Sequence[str] = ()) -> TLSFiles:
    """Return the certificate and key in ``tls_dir``, generating them if needed.

    A generated certificate covers the defaults and ``extra_names``; an operator's certificate is
    only checked against ``check_names`` (the names clients will use), with a warning if it fails.
    """
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    wanted = [_normalise(n) for n in extra_names if n]
    names = list(dict.fromkeys([*DEFAULT_NAMES, *wanted]))

    if not (cert_path.exists() and key_path.exists()):
        _write(cert_path, key_path, names)
        return TLSFiles(cert_path, key_path, created=True)

    if key_path.stat().st_mode & 0o077:
        raise PermissionError(f"{key_path} must not be readable by group or others (chmod 600 it)")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    expiring = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE
    present = certificate_names(cert)
    if _is_ours(cert):
        if expiring or any(n not in present for n in names):
            _write(cert_path, key_path, names)
            return TLSFiles(cert_path, key_path, created=True)
        return TLSFiles(cert_path, key_path, created=False)

    # An operator's certificate: never replaced, only checked against the names serve will use.
    missing = [n for n in (_normalise(n) for n in check_names if n) if n not in present]
    warnings = []
    if expiring:
        warnings.append(f"{cert_path} expires on {cert.not_valid_after_utc:%Y-%m-%d}")
    if missing:
        warnings.append(f"{cert_path} is not valid for: {', '.join(missing)}")
    return TLSFiles(cert_path, key_path, created=False, warnings=tuple(warnings))
