"""Client addresses: one normalisation for every control that reads one."""

from __future__ import annotations

import ipaddress


def client_network(ip: str | None) -> str:
    """The unit an address is limited by: the IPv4 address, or its IPv6 /64 (one subscriber)."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
