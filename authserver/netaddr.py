"""One reading of a caller's IP address, for every rule that looks at one.

Platform layer. :func:`client_address` is the only place that decides who the client is: every
rate limit keyed by address, the audit trail, the telemetry, an API key's allowlist and its
last-used address read it. The allowlist of an API key (keys.policy), the rate limiter
(authserver.ratelimit) and the anomaly detector (authserver.anomaly) all start from
:func:`normalise_ip`, so an address that one of them treats as IPv4 is IPv4 for all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.signals import setting_changed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The longest textual IPv6 address (IPv4-mapped, RFC 4291 §2.2 form 3) is 45 characters; anything
# much longer is garbage and not worth parsing.
_MAX_LENGTH = 64

UNKNOWN = "unknown"


def normalise_ip(value: str | None) -> Address | None:
    """The address as the caller (or the resource server's ``client_ip``) reported it, or None.

    IPv4-mapped IPv6 (``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2) is unwrapped to IPv4, so one host has
    one identity whichever socket family it came through. An IPv6 address with a zone
    (``fe80::1%eth0``, RFC 6874) names a link, not a host on the Internet, and is refused.
    """
    if not value or len(value) > _MAX_LENGTH:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return None
    return address


def network_of(value: str | None, *, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    """The network of ``value`` at the given prefix lengths (CIDR text), or None if it isn't an address."""
    address = normalise_ip(value)
    if address is None:
        return None
    prefix = ipv4_prefix if address.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def client_network(value: str | None) -> str:
    """The unit one caller is counted by: its IPv4 address, or its IPv6 /64, else ``"unknown"``.

    A /64 is what one IPv6 subscriber gets (RFC 6177 §3, RFC 7421): counting single IPv6 addresses
    would let anyone with a /64 rotate through 2^64 identities.
    """
    address = normalise_ip(value)
    if address is None:
        return UNKNOWN
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


# --- Who the client is behind trusted proxies ---------------------------------------------------
# A forwarding header longer than this, or a chain walked further than this, is not a deployment
# anyone runs: it is an attack or a loop, and never decides an address.
MAX_HEADER_BYTES = 2048
MAX_HOPS = 20

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """``AUTHSERVER_TRUSTED_PROXIES`` as networks; ValueError names the first bad entry."""
    networks: list[Network] = []
    for raw in values:
        entry = raw.strip()
        if not entry:
            continue
        if "%" in entry:
            raise ValueError(f"{entry!r}: a zone id names a link, not a proxy; leave it out")
        try:
            network = ipaddress.ip_network(entry)  # strict: 10.0.0.1/8 is a typo, not a network
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IPv4 or IPv6 address or CIDR network ({exc})") from None
        if network.prefixlen == 0:
            raise ValueError(f"{entry!r} trusts every address: any caller could then choose its own address")
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
            raise ValueError(f"{entry!r} is IPv4-mapped IPv6; write the IPv4 network (peers are compared as IPv4)")
        networks.append(network)
    return tuple(networks)


_trusted: tuple[Network, ...] | None = None  # parsed once from settings.TRUSTED_PROXIES


def trusted_proxies() -> tuple[Network, ...]:
    global _trusted
    if _trusted is None:
        from django.conf import settings

        _trusted = parse_trusted_proxies(settings.TRUSTED_PROXIES)
    return _trusted


def _forget_trusted_proxies(*, setting: str, **kwargs: Any) -> None:
    global _trusted
    if setting == "TRUSTED_PROXIES":
        _trusted = None


setting_changed.connect(_forget_trusted_proxies)


def _trusted_address(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)  # a v4 address is never "in" a v6 network


class _Malformed(Exception):
    pass


_PORT = re.compile(r":[0-9]{1,5}")


def _xff_entry(text: str) -> Address:
    """One ``X-Forwarded-For`` entry: ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``,
    ``[2001:db8::1]`` or ``[2001:db8::1]:4711``. Ports are dropped; anything else is malformed."""
    text = text.strip(" \t")
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or ":" not in host or (rest and not _PORT.fullmatch(rest)):
            raise _Malformed
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not _PORT.fullmatch(":" + port):
            raise _Malformed
    else:
        host = text
    address = normalise_ip(host)  # IPv4-mapped unwrapped; zone ids refused
    if address is None or host != host.strip():
        raise _Malformed
    return address


# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string (RFC 7230 §3.2.6).
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TCHARS})=({_TCHARS}|"(?:[^"\\\x00-\x1f\x7f]|\\[\t\x20-\x7e])*")[ \t]*')
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")  # RFC 7239 §6.3 obfnode / obfport


def _forwarded_elements(header: str) -> list[str | None]:
    """The ``for=`` value of each element of a ``Forwarded`` header, oldest first (None: absent)."""
    elements: list[str | None] = []
    pairs: dict[str, str] = {}
    position = 0
    while True:
        match = _PAIR.match(header, position)
        if match is None:
            raise _Malformed
        name, value = match.group(1).lower(), match.group(2)
        if name in pairs:  # §4: a parameter MUST NOT occur more than once per element
            raise _Malformed
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs[name] = value
        position = match.end()
        if position == len(header) or header[position] == ",":
            elements.append(pairs.get("for"))
            pairs = {}
            if position == len(header):
                return elements
        elif header[position] != ";":
            raise _Malformed
        position += 1


def _forwarded_node(value: str | None) -> Address | None:
    """RFC 7239 §6 node: an address (port dropped), or None for ``unknown`` and obfuscated names."""
    if value is None:
        return None  # this hop did not say whom it forwarded for: as good as "unknown"
    if value.startswith("["):  # §6: IPv6 only in brackets, and then quoted
        host, closed, port = value[1:].partition("]")
        if not closed or ":" not in host or (port and not (_PORT.fullmatch(port) or _OBFUSCATED.fullmatch(port[1:]))):
            raise _Malformed
        address = normalise_ip(host)
        if address is None:
            raise _Malformed
        return address
    name, colon, port = value.partition(":")
    if colon and not (_PORT.fullmatch(":" + port) or _OBFUSCATED.fullmatch(port)):
        raise _Malformed
    if name.lower() == "unknown" or _OBFUSCATED.fullmatch(name):
        return None
    try:
        return ipaddress.IPv4Address(name)
    except ValueError:
        raise _Malformed from None


Hop = TypeVar("Hop")


def _walk(hops: list[Hop], peer: Address, networks: tuple[Network, ...],
          node: Callable[[Hop], Address | None]) -> Address:
    """Right to left through trusted proxies: the first hop that is not one is the client."""
    last = peer
    for examined, hop in enumerate(reversed(hops)):
        if examined == MAX_HOPS:
            return peer
        address = node(hop)
        if address is None:  # unknown or obfuscated: the last trusted hop is all we know
            return last
        if not _trusted_address(address, networks):
            return address
        last = address
    return last  # every hop is a trusted proxy: the request came from one of them


def client_address(meta: Mapping[str, Any]) -> str:
    """The client's address for this request (``request.META``, or oauthlib's copy of it).

    ``REMOTE_ADDR`` unless the peer is inside ``settings.TRUSTED_PROXIES``: then the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy. Entries further left were
    written by the client and are never read. ``Forwarded`` (RFC 7239) is read the same way, but
    only when ``X-Forwarded-For`` is absent: every common proxy appends to ``X-Forwarded-For``,
    and one that writes only ``Forwarded`` passes a client's ``X-Forwarded-For`` through untouched,
    so trusting whichever is present would let that client choose. The deployment's proxy must
    therefore set (or strip) ``X-Forwarded-For`` if it speaks ``Forwarded`` (README).

    A malformed entry on the trusted part of the chain, an oversized ``Forwarded`` header, or a
    chain longer than ``MAX_HOPS`` answers the peer: a trusted proxy's address, never a value
    the client chose.
    """
    peer = meta.get("REMOTE_ADDR") or ""
    networks = _trusted if _trusted is not None else trusted_proxies()
    if not networks:
        return str(peer)
    peer_address = normalise_ip(peer)
    if peer_address is None or not _trusted_address(peer_address, networks):
        return str(peer)
    try:
        xff = meta.get("HTTP_X_FORWARDED_FOR")
        if xff is not None:
            entries = xff.split(",")
            if len(xff) > MAX_HEADER_BYTES:
                # Only the right end was written by our proxies: keep its last whole entries (the
                # client's padding on the left is never read, so it cannot push ours out).
                entries = xff[-MAX_HEADER_BYTES:].split(",")[1:]
            return str(_walk(entries, peer_address, networks, _xff_entry))
        forwarded = meta.get("HTTP_FORWARDED")
        if forwarded is None or len(forwarded) > MAX_HEADER_BYTES:
            return str(peer_address)
        return str(_walk(_forwarded_elements(forwarded), peer_address, networks, _forwarded_node))
    except _Malformed:
        return str(peer_address)


def forwarded_proto_believed(meta: Mapping[str, Any]) -> bool:
    """Whether ``X-Forwarded-Proto`` may say the client used HTTPS.

    With ``TRUSTED_PROXIES`` set, only from a peer inside it. Without, as before:
    ``AUTHSERVER_BEHIND_PROXY`` alone decides (Django's ``SECURE_PROXY_SSL_HEADER``), which
    believes any peer and so needs a server only the proxy can reach.
    """
    networks = _trusted if _trusted is not None else trusted_proxies()
    if not networks:
        return True
    peer = normalise_ip(meta.get("REMOTE_ADDR"))
    return peer is not None and _trusted_address(peer, networks)
