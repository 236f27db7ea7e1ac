"""One reading of a caller's IP address, for every rule that looks at one.

Platform layer: standard library only. The allowlist of an API key (keys.policy), the rate limiter
(authserver.ratelimit) and the anomaly detector (authserver.anomaly) all start from
:func:`normalise_ip`, so an address that one of them treats as IPv4 is IPv4 for all of them.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

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
