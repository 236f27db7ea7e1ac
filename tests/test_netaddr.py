"""authserver.netaddr: the one reading of an address that allowlists, limits and anomalies share."""

from __future__ import annotations

import ipaddress

import pytest

from authserver.netaddr import client_network, network_of, normalise_ip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.7", "192.0.2.7"),
        (" 192.0.2.7\n", "192.0.2.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped: the same host as 192.0.2.7
        ("::1", "::1"),
        ("fe80::1%eth0", None),  # zoned: a link, not an Internet host
        ("192.0.2.256", None),
        ("192.0.2.0/24", None),
        ("garbage", None),
        ("", None),
        (None, None),
        ("1" * 65, None),
    ],
)
def test_normalise_ip(value, expected):
    address = normalise_ip(value)
    assert (str(address) if address is not None else None) == expected
    if address is not None:
        assert isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("garbage", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_client_network(value, unit):
    assert client_network(value) == unit


@pytest.mark.parametrize(
    ("value", "network"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("::ffff:192.0.2.77", "192.0.2.0/24"),
        ("2001:db8:1:2::1", "2001:db8:1::/48"),
        ("garbage", None),
        (None, None),
    ],
)
def test_network_of(value, network):
    assert network_of(value, ipv4_prefix=24, ipv6_prefix=48) == network
