"""Validation of an API key's policy: scopes, audiences, IP allowlists, limits, lifetime."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings

from authserver.errors import PolicyViolation
from authserver.netaddr import normalise_ip
from clients.models import Client


class KeyPolicyError(PolicyViolation, ValueError):
    """The requested policy is not acceptable; the message is safe to show."""


def parse_networks(cidrs: Iterable[str]) -> list[str]:
    """Normalised CIDR strings; host bits must be zero (``10.0.0.1/8`` is a typo, not a policy)."""
    out: list[str] = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=True)
        except ValueError as exc:
            raise KeyPolicyError(f"invalid CIDR {cidr!r}: {exc}") from None
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            # ::ffff:a.b.c.d/n is an IPv4 network in disguise; store it as IPv4 so matching is exact.
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{max(network.prefixlen - 96, 0)}", strict=True)
        if str(network) not in out:
            out.append(str(network))
    return out


def ip_allowed(address: str | None, networks: list[str]) -> bool:
    """Empty allowlist: any caller. Otherwise the address must be given and inside a network."""
    if not networks:
        return True
    ip = normalise_ip(address)
    if ip is None:
        return False
    for cidr in networks:
        network = ipaddress.ip_network(cidr)
        if network.version == ip.version and ip in network:
            return True
    return False


def check_scopes(client: Client, scopes: Iterable[str] | None) -> str:
    allowed = set(client.allowed_scopes.values_list("name", flat=True))
    requested = list(dict.fromkeys(scopes)) if scopes is not None else sorted(allowed)
    extra = sorted(set(requested) - allowed)
    if extra:
        raise KeyPolicyError(f"scope(s) not allowed for this client: {', '.join(extra)}")
    return " ".join(requested)


def check_audiences(client: Client, audiences: Iterable[str] | None) -> list[str]:
    allowed = list(client.allowed_audiences or [])
    requested = list(dict.fromkeys(audiences)) if audiences is not None else allowed
    extra = [a for a in requested if a not in allowed]
    if extra:
        raise KeyPolicyError(f"audience(s) not allowed for this client: {', '.join(extra)}")
    return requested


def check_lifetime(expires_in: timedelta | None) -> timedelta:
    maximum = timedelta(seconds=settings.API_KEY_MAX_LIFETIME_SECONDS)
    lifetime = expires_in or timedelta(seconds=settings.API_KEY_DEFAULT_LIFETIME_SECONDS)
    if lifetime <= timedelta(0):
        raise KeyPolicyError("expiry must be in the future")
    if lifetime > maximum:
        raise KeyPolicyError(f"expiry is at most {maximum.days} days (server maximum)")
    return lifetime


def check_rate_limit(rate_limit: tuple[int, int] | None) -> tuple[int | None, int | None]:
    if rate_limit is None:
        return None, None
    count, period = rate_limit
    if count < 1 or not 1 <= period <= 86400:
        raise KeyPolicyError("rate limit must be at least 1 request per 1 s to 1 d")
    return count, period


def parse_rate_limit(text: str) -> tuple[int, int]:
    """``100/m``, ``10/s``, ``5000/h``, ``100000/d`` (also ``100/60s``) → (count, period seconds)."""
    count_text, sep, period_text = text.partition("/")
    units = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
    try:
        count = int(count_text)
        if period_text in units:
            period = units[period_text]
        elif period_text[-1:] in "smhd" and period_text[:-1].isdigit():
            period = int(period_text[:-1]) * units[period_text[-1]]
        else:
            raise ValueError
    except (ValueError, IndexError):
        raise KeyPolicyError(f"invalid rate limit {text!r}: use N/PERIOD such as 100/m") from None
    if not sep:
        raise KeyPolicyError(f"invalid rate limit {text!r}: use N/PERIOD such as 100/m")
    return count, period
