"""The summary ``manage.py serve`` prints once everything is up: the last lines on the screen.

Where the server and its admin are, the first run's one-time password (shown this once), where
the state lives, the certificate to trust, and "Ready." (issue 14: it used to scroll away under
the Celery banners).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def summary_lines(
    *, issuer: str, local_url: str, admin_url: str, admin_username: str, password: str | None, data_dir: Path,
    cert_path: Path | None, children: Mapping[str, int], api_url: str = "", endpoints: str = "fixed",
) -> list[str]:
    lines = ["", f"Server:       {issuer}"]
    if local_url != issuer:
        lines.append(f"Listening on: {local_url}")
    lines.append(f"Admin:        {admin_url}")
    if api_url:
        lines.append(f"API:          {api_url}")  # the management API, random per installation (issue 15)
    if endpoints == "rotating":
        lines.append("OAuth:        rotating paths: clients find them at their discovery URLs (docs/endpoints.md)")
    if password:
        lines += [f'Created superuser "{admin_username}" with password: {password}',
                  "  (shown this once only: the first login replaces it and enrols a second factor)"]
    lines.append(f"Data:         {data_dir}")
    if cert_path:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        lines += [f"Certificate:  {cert_path}", f"  SHA-256 {cert.fingerprint(hashes.SHA256()).hex(':').upper()}"]
    else:
        lines.append("Certificate:  none (--no-tls: terminate TLS in the proxy in front of this server)")
    lines += ["children: " + " ".join(f"{name}={pid}" for name, pid in children.items()), "Ready."]
    return lines
