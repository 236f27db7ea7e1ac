"""Addresses, URLs and the readiness probe of ``manage.py serve``."""

from __future__ import annotations

import http.client
import ipaddress
import ssl
from dataclasses import dataclass

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 (recognised, not bound)


@dataclass(frozen=True)
class Bind:
    host: str  # as given, without brackets: "127.0.0.1", "::1", "0.0.0.0", "auth.local"
    port: int

    @classmethod
    def parse(cls, value: str) -> Bind:
        host, sep, port_text = value.strip().rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"--bind must be HOST:PORT (IPv6 as [::1]:PORT), not {value!r}")
        if host.startswith("["):
            if not host.endswith("]"):
                raise ValueError(f"unbalanced brackets in --bind {value!r}")
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"write an IPv6 --bind address in brackets: [{host}]:{port_text}")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError(f"port out of range in --bind {value!r}")
        return cls(host=host, port=port)

    @property
    def is_wildcard(self) -> bool:
        return self.host in WILDCARDS

    @property
    def connect_host(self) -> str:
        """Where a local client reaches this bind (a wildcard is reached on loopback)."""
        return WILDCARDS.get(self.host, self.host)

    def gunicorn(self) -> str:
        return f"[{self.host}]:{self.port}" if _is_ipv6(self.host) else f"{self.host}:{self.port}"

    def url(self, scheme: str) -> str:
        default_port = {"https": 443, "http": 80}[scheme]
        port = "" if self.port == default_port else f":{self.port}"
        return f"{scheme}://{url_host(self.connect_host)}{port}"


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def url_host(host: str) -> str:
    return f"[{host}]" if _is_ipv6(host) else host


def probe(host: str, port: int, *, tls: bool, path: str = "/healthz", timeout: float = 2.0) -> int | None:
    """HTTP status of ``GET path`` on the local server, or None if it does not answer yet.

    Certificate verification is off here, and only here: this is a liveness poll of the process we
    just started, on an address we chose, and the certificate may be an operator's for a public name.
    """
    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
