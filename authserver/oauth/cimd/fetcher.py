"""The safe fetcher of Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01).

The document's URL is chosen by whoever sends an authorization request, so every fetch is a
request to an attacker-chosen place, made from inside our network (server-side request forgery,
the draft's security considerations). The rules, each one a refusal with a reason (never the body):

* the URL (§3): ``https``, a host, a path without dot segments, no userinfo, no fragment;
* the address: the host is resolved once; *every* address must be globally routable (no loopback,
  private, link-local and the cloud metadata address, CGNAT, multicast, reserved, and no IPv6 form
  embedding one: IPv4-mapped, NAT64, 6to4, Teredo) unless ``AUTHSERVER_CIMD_ALLOW_PRIVATE``; the
  connection goes to the address that was checked (a second lookup could be rebound elsewhere),
  while TLS verifies the certificate for the host name;
* the answer: 200 only (a redirect is not followed: its target would be a new, unchecked request),
  JSON, at most ``CIMD_MAX_DOCUMENT_SIZE`` bytes, and everything (connect, TLS, headers, body)
  within ``CIMD_FETCH_TIMEOUT_SECONDS`` in all: a timer closes the socket at the deadline, so a
  server that drips one byte at a time cannot hold a worker past it (per-read timeouts alone
  could: DOT's fetcher bounds each read, not the sum).

DOT's ``SafeMetadataFetcher`` is the model; it is not subclassed because its resolver, TLS context
and read loop are exactly the parts that change here.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from oauth2_provider.settings import oauth2_settings

MAX_URL_LENGTH = 255  # Client.client_id's column
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d{1,10})(?:$|[,\s])", re.IGNORECASE)


class FetchRefused(Exception):
    """The document was not fetched or not accepted. ``reason`` is a short code for the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    document: dict[str, Any]
    max_age: int  # seconds the document may be believed (Cache-Control max-age, clamped)


def parse_url(url: str) -> SplitResult:
    """§3: the client_id URL's shape, checked before anything touches the network."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or not url.isascii():
        raise FetchRefused("url_invalid")
    if any(ch.isspace() or ord(ch) < 0x21 or ch == "\\" for ch in url):
        raise FetchRefused("url_invalid")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FetchRefused("url_invalid") from None
    if parts.scheme != "https" or not url.startswith("https://"):
        raise FetchRefused("url_not_https")
    if "@" in parts.netloc:
        raise FetchRefused("url_userinfo")
    if "#" in url:
        raise FetchRefused("url_fragment")
    if not parts.hostname or "%" in parts.netloc:
        raise FetchRefused("url_invalid")
    if not parts.path or parts.path == "/":  # §3: MUST contain a path component
        raise FetchRefused("url_invalid")
    if any(segment in {".", ".."} for segment in parts.path.split("/")) or "%2e" in parts.path.lower():
        raise FetchRefused("url_dot_segment")
    return parts


def host_of(url: str) -> str:
    """The host (and port, if any) a URL names, for the audit trail and the consent page; "" if none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return (f"{host}:{port}" if port and port != 443 else host)[:255]


def is_public_address(text: str) -> bool:
    """Globally routable, judging an IPv6 address that embeds an IPv4 one by the IPv4 one."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return all(part.is_global for part in address.teredo)
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    return bool(address.is_global) and not address.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (tests replace this to stand for DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to; every one must be allowed, or none is used."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise FetchRefused("dns_failed") from None
    if not addresses:
        raise FetchRefused("dns_failed")
    if not settings.CIMD_ALLOW_PRIVATE and not all(is_public_address(a) for a in addresses):
        raise FetchRefused("address_not_public")
    return addresses


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.CIMD_CA_FILE:
        context.load_verify_locations(cafile=str(settings.CIMD_CA_FILE))
    return context


def max_age(cache_control: str | None) -> int:
    """How long to believe the document: its max-age (``no-store``/``no-cache``: the floor), clamped."""
    floor = int(oauth2_settings.CIMD_METADATA_MIN_AGE_SECONDS)
    ceiling = int(oauth2_settings.CIMD_METADATA_MAX_AGE_SECONDS)
    value = cache_control or ""
    if "no-store" in value.lower() or "no-cache" in value.lower():
        return floor
    found = _MAX_AGE.search(value)
    return max(floor, min(int(found.group(1)) if found else ceiling, ceiling))


def fetch(url: str) -> Fetched:
    """The document at ``url``, or :class:`FetchRefused`. Nothing is connected to before every
    check that can be made without the network has passed."""
    parts = parse_url(url)
    host, port = str(parts.hostname), parts.port or 443
    deadline = time.monotonic() + float(oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS)
    addresses = checked_addresses(host, port)
    context = _tls_context()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            raw = socket.create_connection((address, port), timeout=remaining)
        except OSError:
            continue  # the next address, within the same deadline
        return _exchange(raw, context, host, port, target, deadline)
    raise FetchRefused("connect_failed")


def _exchange(raw: socket.socket, context: ssl.SSLContext, host: str, port: int, target: str,
              deadline: float) -> Fetched:
    """One GET over ``raw`` (already connected to a checked address), all of it before ``deadline``."""
    expired = threading.Event()
    # The socket the timer must cut: wrapping for TLS detaches ``raw``, so the TLS socket takes its
    # place *before* the handshake (a server that drips its handshake is cut like any other).
    current: list[socket.socket] = [raw]

    def cut() -> None:
        expired.set()
        try:
            # The plain socket's shutdown (a syscall on the descriptor), not SSLSocket's: it wakes a
            # recv blocked in another thread at once, without touching the TLS state that thread uses.
            socket.socket.shutdown(current[0], socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    try:
        raw.settimeout(max(0.01, deadline - time.monotonic()))
        tls = context.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)
        current[0] = tls
        if expired.is_set():
            raise FetchRefused("timeout")
        tls.do_handshake()
        connection = http.client.HTTPSConnection(host, port, context=context)
        connection.sock = tls
        connection.request("GET", target, headers={"Accept": "application/json", "User-Agent": "authserver-cimd"})
        response = connection.getresponse()
        return _read(response, expired)
    except FetchRefused:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
            raise FetchRefused("timeout") from None
        raise FetchRefused("tls_failed" if isinstance(exc, ssl.SSLError) else "connection_failed") from None
    finally:
        timer.cancel()
        current[0].close()


def _read(response: http.client.HTTPResponse, expired: threading.Event) -> Fetched:
    if expired.is_set():  # cut while the headers came in: what arrived is not an answer
        raise FetchRefused("timeout")
    if response.status != 200:  # redirects included: never followed (SSRF)
        raise FetchRefused("redirect" if 300 <= response.status < 400 else "http_status")
    media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    structured = media_type.startswith("application/") and media_type.endswith("+json")  # RFC 6839 §3.1
    if media_type != "application/json" and not structured:
        raise FetchRefused("not_json")
    limit = int(oauth2_settings.CIMD_MAX_DOCUMENT_SIZE)
    declared = response.getheader("Content-Length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise FetchRefused("too_large")
    body = bytearray()
    while len(body) <= limit:
        chunk = response.read1(4096)
        if expired.is_set():
            raise FetchRefused("timeout")
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise FetchRefused("too_large")
    try:
        document = json.loads(bytes(body))
    except ValueError:
        raise FetchRefused("invalid_json") from None
    if not isinstance(document, dict):
        raise FetchRefused("invalid_json")
    return Fetched(document=document, max_age=max_age(response.getheader("Cache-Control")))
