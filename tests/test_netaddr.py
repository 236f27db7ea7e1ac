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


# --- client_address: who the client is behind trusted proxies -----------------------------------
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import override_settings  # noqa: E402

from authserver import conf  # noqa: E402
from authserver.netaddr import (  # noqa: E402
    MAX_HEADER_BYTES,
    MAX_HOPS,
    client_address,
    forwarded_proto_believed,
    parse_trusted_proxies,
)

PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"]
EDGE = "10.0.0.1"  # a trusted proxy
SPOOF = "203.0.113.66"  # what an attacker writes into the headers
CLIENT = "198.51.100.7"


def _meta(remote: str | None = EDGE, xff: str | None = None, forwarded: str | None = None) -> dict[str, str]:
    meta = {"REMOTE_ADDR": remote} if remote is not None else {}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    if forwarded is not None:
        meta["HTTP_FORWARDED"] = forwarded
    return meta


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        # No proxies configured: the headers are never read.
        ([], _meta(EDGE, xff=SPOOF), EDGE),
        ([], _meta(CLIENT, forwarded=f"for={SPOOF}"), CLIENT),
        ([], _meta(None, xff=SPOOF), ""),
        # An untrusted peer's headers are ignored.
        (PROXIES, _meta(CLIENT, xff=SPOOF), CLIENT),
        (PROXIES, _meta(CLIENT, forwarded=f"for={SPOOF}"), CLIENT),
        (PROXIES, _meta("garbage", xff=SPOOF), "garbage"),
        # One trusted proxy.
        (PROXIES, _meta(xff=CLIENT), CLIENT),
        (PROXIES, _meta(xff=f" {CLIENT} "), CLIENT),
        (PROXIES, _meta(), EDGE),  # no header: the proxy itself
        # The client's own (spoofed) entries are left of what the proxy appended.
        (PROXIES, _meta(xff=f"{SPOOF}, {CLIENT}"), CLIENT),
        (PROXIES, _meta(xff=f"{SPOOF}, 10.9.9.9, {CLIENT}"), CLIENT),
        (PROXIES, _meta(xff=f"garbage, [junk, {CLIENT}"), CLIENT),  # never parsed
        # Chains of trusted proxies, walked right to left.
        (PROXIES, _meta(xff=f"{SPOOF}, {CLIENT}, 10.1.1.1, 10.2.2.2"), CLIENT),
        (PROXIES, _meta(xff=f"{CLIENT}, 2001:db8:ffff::9"), CLIENT),
        (PROXIES, _meta(xff="10.1.1.1, 10.2.2.2"), "10.1.1.1"),  # all trusted: the first proxy
        # Ports, brackets, IPv6, IPv4-mapped.
        (PROXIES, _meta(xff=f"{CLIENT}:4711"), CLIENT),
        (PROXIES, _meta(xff="[2001:db8::1]:4711"), "2001:db8::1"),
        (PROXIES, _meta(xff="[2001:db8::1]"), "2001:db8::1"),
        (PROXIES, _meta(xff="2001:DB8::1"), "2001:db8::1"),
        (PROXIES, _meta(xff=f"::ffff:{CLIENT}"), CLIENT),
        (PROXIES, _meta(xff="::ffff:10.3.3.3"), "10.3.3.3"),  # mapped proxy is still a proxy
        (PROXIES, _meta("::ffff:10.0.0.1", xff=CLIENT), CLIENT),  # mapped peer is trusted
        # Malformed entries on the trusted part of the chain: the peer, never the client's choice.
        (PROXIES, _meta(xff="garbage"), EDGE),
        (PROXIES, _meta(xff=f"{SPOOF}, garbage"), EDGE),
        (PROXIES, _meta(xff=f"{SPOOF}, "), EDGE),
        (PROXIES, _meta(xff="unknown"), EDGE),
        (PROXIES, _meta(xff="fe80::1%eth0"), EDGE),  # zone id
        (PROXIES, _meta(xff=f"{CLIENT}:99999999"), EDGE),
        (PROXIES, _meta(xff=f"{CLIENT}:"), EDGE),
        (PROXIES, _meta(xff="[2001:db8::1"), EDGE),
        (PROXIES, _meta(xff=f"[{CLIENT}]"), EDGE),  # brackets are for IPv6
        (PROXIES, _meta(xff="192.0.2.0/24"), EDGE),
        (PROXIES, _meta(xff=f"{SPOOF}, garbage, 10.1.1.1"), EDGE),
        # Oversized: only the right end counts; a chain of trusted hops too long to walk is refused.
        (PROXIES, _meta(xff=f"{SPOOF}, " * 400 + CLIENT), CLIENT),
        (PROXIES, _meta(xff="10.1.1.1, " * 400 + "10.1.1.1"), EDGE),
        (PROXIES, _meta(xff="1" * 3000 + f", {CLIENT}"), CLIENT),  # one huge client-written entry
        (PROXIES, _meta(xff="1" * (MAX_HEADER_BYTES - 9) + ", 10.1.1.1"), "10.1.1.1"),  # cut entry never read
        (PROXIES, _meta(xff=", ".join([SPOOF] + ["10.1.1.1"] * MAX_HOPS)), EDGE),
        (PROXIES, _meta(xff=", ".join([CLIENT] + ["10.1.1.1"] * (MAX_HOPS - 1))), CLIENT),
        # RFC 7239 Forwarded, read only when X-Forwarded-For is absent.
        (PROXIES, _meta(forwarded=f"for={CLIENT}"), CLIENT),
        (PROXIES, _meta(forwarded=f'for="{CLIENT}:4711";proto=https;by=10.0.0.1'), CLIENT),
        (PROXIES, _meta(forwarded='for="[2001:db8::1]:4711"'), "2001:db8::1"),
        (PROXIES, _meta(forwarded='For="[2001:db8::1]"'), "2001:db8::1"),
        (PROXIES, _meta(forwarded=f"for={SPOOF}, for={CLIENT}"), CLIENT),
        (PROXIES, _meta(forwarded=f"for={SPOOF},for={CLIENT};proto=https, for=10.1.1.1"), CLIENT),
        (PROXIES, _meta(forwarded='for="[::ffff:198.51.100.7]"'), CLIENT),
        (PROXIES, _meta(forwarded='for="\\1\\9\\8.51.100.7"'), CLIENT),  # quoted-pair
        # unknown and obfuscated: stop at the last trusted hop.
        (PROXIES, _meta(forwarded=f"for={SPOOF}, for=unknown"), EDGE),
        (PROXIES, _meta(forwarded=f"for={SPOOF}, for=_hidden, for=10.1.1.1"), "10.1.1.1"),
        (PROXIES, _meta(forwarded=f'for={SPOOF}, for="_hidden:_port"'), EDGE),
        (PROXIES, _meta(forwarded=f"for={SPOOF}, proto=https"), EDGE),  # no for=: unknown
        (PROXIES, _meta(forwarded=f"for={SPOOF}, for=unknown, for={CLIENT}"), CLIENT),
        # Malformed Forwarded: the peer.
        (PROXIES, _meta(forwarded="for=2001:db8::1"), EDGE),  # IPv6 must be quoted
        (PROXIES, _meta(forwarded='for="2001:db8::1"'), EDGE),  # ... and bracketed
        (PROXIES, _meta(forwarded=f"for={CLIENT};for={SPOOF}"), EDGE),  # repeated parameter
        (PROXIES, _meta(forwarded=f'for="{CLIENT}'), EDGE),  # unterminated quote
        (PROXIES, _meta(forwarded=f"for={CLIENT},"), EDGE),
        (PROXIES, _meta(forwarded=f"for={CLIENT} x"), EDGE),
        (PROXIES, _meta(forwarded="for=garbage"), EDGE),
        (PROXIES, _meta(forwarded=f'for="{CLIENT}:port"'), EDGE),
        (PROXIES, _meta(forwarded=f"for={SPOOF};by=x y, for={CLIENT}"), EDGE),  # malformed anywhere
        (PROXIES, _meta(forwarded=f"for={SPOOF}, " * 200 + f"for={CLIENT}"), EDGE),  # > MAX_HEADER_BYTES
        # Both present: X-Forwarded-For wins.
        (PROXIES, _meta(xff=CLIENT, forwarded=f"for={SPOOF}"), CLIENT),
    ],
)
def test_client_address(proxies, meta, expected):
    with override_settings(TRUSTED_PROXIES=proxies):
        assert client_address(meta) == expected


def test_oversized_forwarded_header_is_over_the_limit():
    assert len(f"for={SPOOF}, " * 200) > MAX_HEADER_BYTES


def test_trusted_networks_are_parsed_once_per_setting(monkeypatch):
    calls = []
    import authserver.netaddr as netaddr

    real = netaddr.parse_trusted_proxies
    monkeypatch.setattr(netaddr, "parse_trusted_proxies", lambda v: calls.append(v) or real(v))
    with override_settings(TRUSTED_PROXIES=PROXIES):
        for _ in range(5):
            assert client_address(_meta(xff=CLIENT)) == CLIENT
        assert len(calls) == 1
    with override_settings(TRUSTED_PROXIES=[]):  # a changed setting is re-read
        assert client_address(_meta(xff=CLIENT)) == EDGE


@pytest.mark.parametrize(
    ("proxies", "remote", "believed"),
    [([], CLIENT, True), (PROXIES, EDGE, True), (PROXIES, "::ffff:10.0.0.1", True), (PROXIES, CLIENT, False),
     (PROXIES, "garbage", False), (PROXIES, None, False)],
)
def test_forwarded_proto_only_from_trusted_proxies(proxies, remote, believed):
    with override_settings(TRUSTED_PROXIES=proxies):
        assert forwarded_proto_believed(_meta(remote)) is believed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("10.0.0.0/8", ["10.0.0.0/8"]), (" 10.0.0.1 , 2001:db8::/32,", ["10.0.0.1/32", "2001:db8::/32"]),
     ("", [])],
)
def test_trusted_proxies_variable(raw, parsed):
    config = conf.load({"AUTHSERVER_TRUSTED_PROXIES": raw}, testing=True)
    assert list(config.trusted_proxies) == parsed
    assert conf.flat_settings(config)["TRUSTED_PROXIES"] == parsed


@pytest.mark.parametrize(
    ("raw", "message"),
    [("10.0.0.1/8", "host bits set"), ("10.0.0.0/33", "not an IPv4 or IPv6"), ("proxy.example", "not an IPv4"),
     ("0.0.0.0/0", "trusts every address"), ("::/0", "trusts every address"), ("fe80::1%eth0", "zone id"),
     ("::ffff:10.0.0.0/104", "IPv4-mapped"), ("10.0.0.0/8, nonsense", "'nonsense'")],
)
def test_a_bad_trusted_proxy_refuses_to_start(raw, message):
    with pytest.raises(ImproperlyConfigured, match="AUTHSERVER_TRUSTED_PROXIES") as refused:
        conf.load({"AUTHSERVER_TRUSTED_PROXIES": raw}, testing=True)
    assert message in str(refused.value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_trusted_proxies(raw.split(","))
