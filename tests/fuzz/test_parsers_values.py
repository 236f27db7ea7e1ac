"""Properties of the value parsers: the credential format, the redirect-URI rules, CIDR lists and
client addresses. Any input gives an answer or the module's own refusal, never another exception."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from authserver import credentials
from authserver.netaddr import client_address, normalise_ip, parse_trusted_proxies
from clients.redirects import redirect_uri_matches, validate_redirect_uri
from keys.policy import KeyPolicyError, ip_allowed, parse_networks

KINDS = st.sampled_from([credentials.ACCESS_TOKEN, credentials.REFRESH_TOKEN, credentials.CLIENT_SECRET,
                         credentials.AUTHORIZATION_CODE, "sk", "z9"])
RANDOM_PART = st.text(credentials.ALPHABET, min_size=credentials.RANDOM_LENGTH, max_size=credentials.RANDOM_LENGTH)


# -- The credential format (authserver.credentials) ----------------------------------------------

@settings(max_examples=500)
@given(value=st.text(max_size=80) | st.binary(max_size=60) | st.integers() | st.none())
@example(value="at_" + "0" * credentials.BODY_LENGTH)
@example(value="AT_" + "0" * credentials.BODY_LENGTH)
@example(value="a" * 17 + "_" + "0" * credentials.BODY_LENGTH)
@example(value="at_" + "\u0660" * credentials.BODY_LENGTH)  # Unicode digits: \d would take them
def test_is_well_formed_never_raises(value: object) -> None:
    assert credentials.is_well_formed(value) in (True, False)
    if isinstance(value, str):
        assert credentials.credential_type(value) in (None, *[value.partition("_")[0]])


@settings(max_examples=300)
@given(kind=KINDS, random_part=RANDOM_PART)
def test_assembled_credentials_are_well_formed_and_redacted(kind: str, random_part: str) -> None:
    value = credentials.assemble(kind, random_part)
    assert credentials.is_well_formed(value, kind)
    assert credentials.credential_type(value) == kind
    assert credentials.CREDENTIAL_PATTERN.search(f"x{value}y") is not None  # log redaction finds it glued
    assert value[-4:] in credentials.hint(value) and random_part[:-4] not in credentials.hint(value)


@settings(max_examples=400)
@given(kind=KINDS, random_part=RANDOM_PART, data=st.data())
def test_any_single_character_change_is_caught(kind: str, random_part: str, data: st.DataObject) -> None:
    """CRC-32 detects every single-symbol error, and base62 of 6 places holds every 32-bit value."""
    value = credentials.assemble(kind, random_part)
    position = data.draw(st.integers(len(kind) + 1, len(value) - 1))
    replacement = data.draw(st.sampled_from(credentials.ALPHABET).filter(lambda ch: ch != value[position]))
    assert not credentials.is_well_formed(value[:position] + replacement + value[position + 1:])


# -- Redirect URIs (clients.redirects) -----------------------------------------------------------

URI_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
URI = st.one_of(
    st.text(URI_CHARS, max_size=60),
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}",
              st.sampled_from(["https", "http", "HTTPS", "javascript", ""]),
              st.sampled_from(["app.example.test", "APP.example.test", "127.0.0.1", "[::1]", "[::1", "a@b",
                               "127.0.0.1:0", "127.0.0.1:99999", "[v1.x]", "xn--e1a.test", "a..b", "%41"]),
              st.text(URI_CHARS, max_size=20)),
)
REGISTERED = ["https://app.example.test/callback", "http://127.0.0.1/cb", "http://[::1]:8080/cb"]


@settings(max_examples=500)
@given(uri=URI, public_client=st.booleans())
@example(uri="https://app.example.test:/cb", public_client=False)
@example(uri="https://[::1", public_client=False)
@example(uri="https://app.example.test:65536/cb", public_client=False)
def test_redirect_registration_refuses_only_with_validation_error(uri: str, public_client: bool) -> None:
    try:
        validate_redirect_uri(uri, public_client=public_client)
    except ValidationError:
        return
    assert uri.startswith(("https://", "http://127.0.0.1", "http://[::1]"))
    assert redirect_uri_matches(uri, [uri])  # what may be registered matches itself


@settings(max_examples=500)
@given(uri=URI | st.sampled_from(REGISTERED).flatmap(
    lambda r: st.builds(lambda cut, tail: r[:cut] + tail, st.integers(0, len(r)), st.text(URI_CHARS, max_size=4))))
def test_redirect_matching_is_exact_but_for_a_loopback_port(uri: str) -> None:
    matched = redirect_uri_matches(uri, REGISTERED)
    if uri in REGISTERED:
        assert matched
    elif matched:  # RFC 8252 §7.3: only the port of a loopback IP literal may differ
        assert uri.startswith(("http://127.0.0.1", "http://[::1]"))
        assert uri.rsplit("/", 1)[-1] == "cb"


@pytest.mark.parametrize("uri", [None, 7, b"https://app.example.test/callback", ["x"], ""])
def test_redirect_matching_refuses_non_strings(uri: object) -> None:
    assert redirect_uri_matches(uri, REGISTERED) is False


# -- CIDR lists (keys.policy) and addresses (authserver.netaddr) ---------------------------------

def _network_text(version: int) -> st.SearchStrategy[str]:
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    bits = 32 if version == 4 else 128
    return st.builds(lambda n, p: str(cls((n, p), strict=False)), st.integers(0, 2**bits - 1), st.integers(0, bits))


CIDR = st.one_of(
    _network_text(4), _network_text(6), st.text(max_size=50),
    st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(), st.integers(-5, 140) | st.text(max_size=4)),
    st.builds(lambda n: f"::ffff:{n}", _network_text(4)),
)


@settings(max_examples=500)
@given(cidrs=st.lists(CIDR, max_size=5))
@example(cidrs=["::ffff:10.0.0.0/104"])
@example(cidrs=["::ffff:0.0.0.0/96"])
@example(cidrs=["10.0.0.1/8"])
@example(cidrs=["fe80::/10%eth0"])
def test_cidr_lists_parse_to_canonical_networks_or_refuse(cidrs: list[str]) -> None:
    try:
        parsed = parse_networks(cidrs)
    except KeyPolicyError:
        return
    for text in parsed:
        network = ipaddress.ip_network(text, strict=True)
        assert str(network) == text
        assert network.version == 4 or network.network_address.ipv4_mapped is None
    assert parse_networks(parsed) == parsed  # canonical: parsing again changes nothing


@settings(max_examples=300)
@given(network=_network_text(4) | _network_text(6), data=st.data())
def test_every_address_inside_an_allowed_network_is_allowed(network: str, data: st.DataObject) -> None:
    net = ipaddress.ip_network(network)
    assume(net.version == 4 or net.network_address.ipv4_mapped is None)
    offset = data.draw(st.integers(0, net.num_addresses - 1))
    address = net.network_address + offset
    assert ip_allowed(str(address), parse_networks([network]))
    if net.version == 4:  # the same host reached over an IPv6 socket
        assert ip_allowed(f"::ffff:{address}", parse_networks([network]))


@settings(max_examples=400)
@given(address=st.text(max_size=70) | st.ip_addresses().map(str), networks=st.lists(_network_text(4) | _network_text(6),
                                                                                   max_size=3))
def test_allowlist_check_never_raises(address: str, networks: list[str]) -> None:
    assert ip_allowed(address, networks) in (True, False)
    assert normalise_ip(address) is None or isinstance(normalise_ip(address), ipaddress.IPv4Address
                                                                                | ipaddress.IPv6Address)


@settings(max_examples=300)
@given(entries=st.lists(CIDR, max_size=4))
def test_trusted_proxy_lists_refuse_only_with_value_error(entries: list[str]) -> None:
    try:
        networks = parse_trusted_proxies(entries)
    except ValueError:
        return
    assert all(network.prefixlen > 0 for network in networks)


HEADER = st.text(st.characters(codec="latin-1"), max_size=120) | st.lists(
    st.sampled_from(["10.0.0.1", "10.0.0.2:80", "[2001:db8::1]:443", "2001:db8::2", "unknown", "_hidden",
                     "for=10.0.0.9", 'for="[2001:db8::1]"', "for=_x;by=10.0.0.1", "", " ", "\t", '"', "::ffff:1.2.3.4"]),
    max_size=6).map(", ".join)


@settings(max_examples=400)
@given(xff=st.none() | HEADER, forwarded=st.none() | HEADER)
def test_client_address_is_the_peer_or_an_address(xff: str | None, forwarded: str | None) -> None:
    from django.test import override_settings

    meta = {"REMOTE_ADDR": "10.0.0.1"}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    if forwarded is not None:
        meta["HTTP_FORWARDED"] = forwarded
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/8"]):
        answer = client_address(meta)
    assert answer == "10.0.0.1" or normalise_ip(answer) is not None
