"""The fetcher's rules on their own: which addresses are public, how long a document is believed."""

from __future__ import annotations

import pytest

from authserver.oauth.cimd import fetcher


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.215.14", True),
    ("2606:4700:4700::1111", True),
    ("127.0.0.1", False),
    ("10.0.0.1", False),
    ("172.16.0.1", False),
    ("192.168.0.1", False),
    ("169.254.169.254", False),
    ("100.64.0.1", False),  # CGNAT (RFC 6598)
    ("0.0.0.0", False),  # noqa: S104 - an address judged, not bound
    ("255.255.255.255", False),
    ("224.0.0.1", False),
    ("240.0.0.1", False),  # reserved
    ("192.0.2.1", False),  # documentation
    ("::1", False),
    ("::", False),
    ("fe80::1", False),
    ("fe80::1%eth0", False),
    ("fc00::1", False),
    ("fd12:3456::1", False),
    ("ff02::1", False),
    ("::ffff:127.0.0.1", False),  # IPv4-mapped
    ("::ffff:93.184.215.14", True),
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ("64:ff9b::5db8:d70e", True),  # NAT64 of 93.184.215.14
    ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, its client address is private
    ("not an address", False),
])
def test_public_addresses(address, public):
    assert fetcher.is_public_address(address) is public


@pytest.mark.parametrize(("header", "seconds"), [
    (None, 3600),
    ("max-age=600", 600),
    ("public, max-age=120, must-revalidate", 120),
    ("max-age=5", 60),  # floor
    ("max-age=999999999", 3600),  # ceiling
    ("no-store", 60),
    ("no-cache, max-age=600", 60),
    ("s-maxage=10", 3600),  # not max-age
])
def test_max_age_is_clamped(header, seconds):
    assert fetcher.max_age(header) == seconds


@pytest.mark.parametrize(("url", "host"), [
    ("https://app.example.test/agent.json", "app.example.test"),
    ("https://app.example.test:8443/agent.json", "app.example.test:8443"),
    ("https://[2001:db8::1]/a", "[2001:db8::1]"),
    ("https://app.example.test:443/a", "app.example.test"),
    ("https://[bad/a", ""),
])
def test_host_shown_for_a_document(url, host):
    assert fetcher.host_of(url) == host


def test_a_url_longer_than_the_column_is_refused():
    with pytest.raises(fetcher.FetchRefused) as refused:
        fetcher.parse_url("https://app.example.test/" + "a" * 300)
    assert refused.value.reason == "url_invalid"
