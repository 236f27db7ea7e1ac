"""Verification: cache bounds (TTL, exp, negative), fail closed, the caller's address, Bearer parsing."""

from __future__ import annotations

import asyncio

import pytest

from authserver_rs import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    NoCredential,
    RateLimited,
    Routed,
    Unavailable,
    bearer_credential,
)

from .conftest import NOW, active


def test_cached_positive_answer_is_served_without_a_round_trip(fake, make_kit, connected):
    kit = connected(make_kit(cache_ttl=60))
    fake.answers["at_one"] = active()
    principal = kit.authenticate("at_one", "192.0.2.1")
    assert (principal.sub, principal.client_id, principal.scope) == ("42", "app-1", frozenset({"ai.infer"}))
    assert principal.aud == ("https://api.test",) and principal.exp == int(NOW + 3600)
    kit.authenticate("at_one", "192.0.2.1")
    assert len(fake.introspections) == 1
    assert fake.introspections[0] == {"token": "at_one", "client_ip": "192.0.2.1"}


@pytest.mark.parametrize(("ttl", "exp_in", "expires_after"), [(60, 3600, 60), (60, 10, 10), (5, 3600, 5)])
def test_entry_deadline_is_the_earlier_of_ttl_and_exp(fake, make_kit, clock, ttl, exp_in, expires_after):
    kit = make_kit(cache_ttl=ttl, revocation_stream=False)
    fake.answers["at_one"] = active(exp=NOW + exp_in)
    kit.authenticate("at_one", None)
    clock.advance(expires_after - 0.5)
    kit.authenticate("at_one", None)
    assert len(fake.introspections) == 1
    clock.advance(1)
    kit.authenticate("at_one", None)
    assert len(fake.introspections) == 2


def test_negative_answers_are_cached_briefly(fake, make_kit, clock):
    kit = make_kit(negative_ttl=2, revocation_stream=False)
    for _ in range(3):
        with pytest.raises(InvalidToken):
            kit.authenticate("at_unknown", "192.0.2.1")
    assert len(fake.introspections) == 1
    clock.advance(2.1)
    with pytest.raises(InvalidToken):
        kit.authenticate("at_unknown", "192.0.2.1")
    assert len(fake.introspections) == 2


def test_negative_answers_are_bound_to_the_callers_address(fake, make_kit):
    kit = make_kit(revocation_stream=False)
    with pytest.raises(InvalidToken):
        kit.authenticate("ak_key", "192.0.2.1")  # e.g. outside the key's allowlist
    fake.answers["ak_key"] = active(token_type="api_key")
    assert kit.authenticate("ak_key", "192.0.2.2").client_id == "app-1"


def test_api_key_answers_are_bound_to_the_callers_address(fake, make_kit):
    kit = make_kit(revocation_stream=False)
    fake.answers["ak_key"] = active(token_type="api_key")
    kit.authenticate("ak_key", "192.0.2.1")
    kit.authenticate("ak_key", "192.0.2.1")
    assert len(fake.introspections) == 1
    kit.authenticate("ak_key", "192.0.2.2")
    assert len(fake.introspections) == 2


@pytest.mark.parametrize("member", ["rate_limit", "quota"])
def test_answers_the_server_must_count_are_never_cached(fake, make_kit, member):
    kit = make_kit(revocation_stream=False)
    fake.answers["ak_key"] = active(token_type="api_key", **{member: {"limit": 10, "remaining": 9}})
    kit.authenticate("ak_key", None)
    kit.authenticate("ak_key", None)
    assert len(fake.introspections) == 2


def test_rate_limited_key_is_refused_with_retry_after(fake, make_kit):
    kit = make_kit(revocation_stream=False)
    fake.answers["ak_key"] = {"active": False, "rate_limited": True, "retry_after": 7,
                              "rate_limit": {"limit": 10, "remaining": 0, "reset": NOW + 7}}
    with pytest.raises(RateLimited) as raised:
        kit.authenticate("ak_key", None)
    assert raised.value.retry_after == 7


@pytest.mark.parametrize("failure", ["unreachable", 500, 502, 503, 401, 429, "not-json"])
def test_fails_closed_when_the_server_cannot_answer(fake, make_kit, failure):
    kit = make_kit(revocation_stream=False)
    fake.answers["at_one"] = active()
    if failure == "unreachable":
        fake.unreachable = True
    elif failure == "not-json":
        fake.introspection_status = 299
    else:
        fake.introspection_status = failure
    with pytest.raises(Unavailable):
        kit.authenticate("at_one", None)


def test_wrong_resource_server_secret_fails_closed(fake, make_kit):
    kit = make_kit(revocation_stream=False, client_secret="cs_wrong")
    with pytest.raises(Unavailable):
        kit.authenticate("at_one", None)


def test_scopes_are_checked(fake, make_kit):
    kit = make_kit(revocation_stream=False)
    fake.answers["at_one"] = active(scope="ai.read")
    with pytest.raises(InsufficientScope) as raised:
        kit.authorize(Routed(None, "/"), "Bearer at_one", None, ("ai.infer",))
    assert raised.value.needed == ("ai.infer",)
    assert kit.authorize(Routed(None, "/"), "Bearer at_one", None, ("ai.read",)).client_id == "app-1"


@pytest.mark.parametrize(("header", "refusal"), [
    (None, NoCredential), ("", NoCredential), ("Basic dXNlcjpwdw==", NoCredential), ("Bearer", InvalidRequest),
    ("Bearer ", InvalidRequest), ("Bearer a b", InvalidRequest), ("Bearer " + "a" * 5000, InvalidRequest)])
def test_bearer_header_table(header, refusal):
    with pytest.raises(refusal):
        bearer_credential(header)


def test_bearer_scheme_is_case_insensitive():
    assert bearer_credential("bearer at_one") == "at_one"


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("10.0.0.5", "198.51.100.7", "198.51.100.7"),           # trusted proxy: its header
    ("10.0.0.5", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the entry the proxy appended
    ("203.0.113.9", "198.51.100.7", "203.0.113.9"),         # not a trusted proxy: the peer
    ("10.0.0.5", "garbage", "10.0.0.5"),
    ("10.0.0.5", None, "10.0.0.5"),
])
def test_client_ip_from_trusted_proxy_only(make_kit, peer, forwarded, expected):
    kit = make_kit(revocation_stream=False, client_ip_header="X-Forwarded-For", trusted_proxies=("10.0.0.0/8",))
    assert kit.client_ip(peer, forwarded) == expected


def test_client_ip_header_ignored_unless_configured(make_kit):
    assert make_kit(revocation_stream=False).client_ip("203.0.113.9", "198.51.100.7") == "203.0.113.9"


@pytest.mark.parametrize("options", [
    {"stream_grace": 1.0}, {"cache_size": 0}, {"introspection_endpoint": None},
    {"client_ip_header": "X-Forwarded-For"}, {"trusted_proxies": ("not-a-network",)}])
def test_bad_configuration_is_refused(make_kit, options):
    with pytest.raises(ValueError):
        make_kit(**options)


def test_async_path_caches_like_the_sync_one(fake, make_kit, connected):
    kit = connected(make_kit())
    fake.answers["at_one"] = active()
    asyncio.run(_async_path(kit, fake))


async def _async_path(kit, fake):
    assert (await kit.authenticate_async("at_one", "192.0.2.1")).client_id == "app-1"
    await kit.authenticate_async("at_one", "192.0.2.1")
    assert len(fake.introspections) == 1
    fake.unreachable = True
    with pytest.raises(Unavailable):
        await kit.authenticate_async("at_other", None)
    await kit.introspector.aclose()
