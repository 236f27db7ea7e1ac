"""Verification of API keys: policy, indistinguishable refusals, no database writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authserver import counters, credentials, revocation
from keys.models import ApiKey
from keys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_suspend
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE

pytestmark = pytest.mark.django_db


def verify(plaintext, audience=RS_AUDIENCE, ip=None):
    return api_key_verify(key=plaintext, audience=audience, client_ip=ip)


def test_active_key_answer_shape(key_owner):
    key, plaintext = api_key_create(client=key_owner, name="prod", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    assert credentials.is_well_formed(plaintext, "ak")
    answer = verify(plaintext)
    assert answer == {
        "active": True, "token_type": "api_key", "key_id": str(key.id), "scope": "ai.infer",
        "client_id": key_owner.client_id, "aud": [RS_AUDIENCE], "exp": int(key.expires.timestamp()),
        "iat": int(key.created.timestamp()), "iss": "https://127.0.0.1:8443",
    }


def test_stored_as_digest_only(key_owner):
    key, plaintext = api_key_create(client=key_owner, name="prod")
    stored = ApiKey.objects.filter(pk=key.pk).values()[0]
    assert plaintext not in str(stored)
    assert stored["digest"] == credentials.digest(plaintext)
    assert stored["hint"] == credentials.hint(plaintext)


@pytest.mark.parametrize(
    "garbage",
    ["", "ak_", "ak_short", "xx_" + "a" * 49, "AK_" + "a" * 49, "ak_" + "a" * 48, "ak_" + "a" * 50,
     "ak_" + "-" * 49, "ak_" + "é" * 49, "x" * 1_000_000, "at_" + "a" * 49],
    ids=["empty", "prefix-only", "short", "wrong-prefix", "upper-prefix", "one-short", "one-long",
         "bad-alphabet", "unicode", "1MB", "other-type"],
)
def test_malformed_keys_cost_zero_queries(key_owner, garbage):
    with CaptureQueriesContext(connection) as queries:
        assert verify(garbage) == {"active": False}
    assert len(queries) == 0


def test_bad_checksum_costs_zero_queries(key_owner):
    _, plaintext = api_key_create(client=key_owner, name="k")
    flipped = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    with CaptureQueriesContext(connection) as queries:
        assert verify(flipped) == {"active": False}
    assert len(queries) == 0


def test_one_query_on_miss_none_on_hit(key_owner):
    _, plaintext = api_key_create(client=key_owner, name="k")
    with CaptureQueriesContext(connection) as miss:
        assert verify(plaintext)["active"] is True
    with CaptureQueriesContext(connection) as hit:
        assert verify(plaintext)["active"] is True
    assert len(miss) == 1 and len(hit) == 0
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in miss.captured_queries)


def _states(owner):
    """One key per refusal reason, each otherwise valid for RS_AUDIENCE."""
    out = {}
    _, out["unknown"] = credentials.mint("ak"), credentials.mint("ak")
    k, out["revoked"] = api_key_create(client=owner, name="r")
    api_key_revoke(key=k)
    k, out["suspended"] = api_key_create(client=owner, name="s")
    api_key_suspend(key=k)
    k, out["expired"] = api_key_create(client=owner, name="e")
    ApiKey.objects.filter(pk=k.pk).update(expires=timezone.now() - timedelta(seconds=1))
    _, out["foreign-audience"] = api_key_create(client=owner, name="f", audiences=["https://other-api.example.test"])
    _, out["ip-outside"] = api_key_create(client=owner, name="i", allowed_ips=["10.0.0.0/8"])
    k, out["grace-over"] = api_key_create(client=owner, name="g")
    api_key_rotate(key=k, grace=timedelta(seconds=0))
    k, out["out-of-quota"] = api_key_create(client=owner, name="q", quota=1)
    assert verify(out["out-of-quota"])["active"] is True  # uses the only allowed use
    return out


def test_every_refusal_is_byte_identical(key_owner, client, resource_server):
    from tests.helpers import introspect

    rs, rs_secret = resource_server
    bodies = {reason: introspect(client, rs, rs_secret, value, client_ip="192.0.2.1").content
              for reason, value in _states(key_owner).items()}
    assert set(bodies.values()) == {b'{"active": false}'}, bodies


@pytest.mark.parametrize(
    ("allow", "ip", "active"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["10.0.0.0/8"], None, False),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),  # IPv4-mapped IPv6 is the IPv4 address
        (["10.0.0.0/8"], "::ffff:11.1.2.3", False),
        (["::ffff:10.0.0.0/104"], "10.9.9.9", True),  # a mapped CIDR is stored as IPv4
        (["192.0.2.0/32"], "192.0.2.0", True),
        (["192.0.2.0/32"], "192.0.2.1", False),
        (["0.0.0.0/0"], "203.0.113.7", True),
        (["0.0.0.0/0"], "2001:db8::1", False),  # v4 networks never match v6 callers
        (["2001:db8::/32"], "2001:db8:ffff::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["2001:db8::/128"], "2001:db8::", True),
        (["::/0"], "2001:db8::1", True),
        (["2001:db8::/32"], "fe80::1%eth0", False),  # zoned addresses are refused
        (["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5", True),
        (["10.0.0.0/8"], "not-an-ip", False),
        (["10.0.0.0/8"], "10.1.2.3/32", False),
        ([], None, True),  # no allowlist: any caller
    ],
)
def test_ip_allowlist(key_owner, allow, ip, active):
    _, plaintext = api_key_create(client=key_owner, name="ip", allowed_ips=allow)
    assert verify(plaintext, ip=ip)["active"] is active


@pytest.mark.parametrize("cidr", ["10.0.0.1/8", "300.0.0.0/8", "10.0.0.0/33", "2001:db8::1/32", "nonsense", ""])
def test_invalid_allowlist_is_refused_at_creation(key_owner, cidr):
    from keys.policy import KeyPolicyError

    with pytest.raises(KeyPolicyError):
        api_key_create(client=key_owner, name="bad", allowed_ips=[cidr])
    assert not ApiKey.objects.exists()


def test_rotation_grace_then_job(key_owner):
    from keys.tasks import grace_periods_end

    old, old_plain = api_key_create(client=key_owner, name="r", scopes=["ai.infer"], allowed_ips=["10.0.0.0/8"],
                                    rate_limit=(5, 60), quota=100)
    new, new_plain = api_key_rotate(key=old, grace=timedelta(hours=1))
    assert (new.scope, new.audiences, new.allowed_ips, new.rate_limit, new.quota) == (
        old.scope, old.audiences, old.allowed_ips, old.rate_limit, old.quota)
    assert verify(old_plain, ip="10.0.0.1")["active"] is True
    assert verify(new_plain, ip="10.0.0.1")["active"] is True
    ApiKey.objects.filter(pk=old.pk).update(grace_ends=timezone.now() - timedelta(seconds=1))
    revocation.api_keys.clear()  # the edit above stands in for time passing; a cached copy would say the same
    assert verify(old_plain, ip="10.0.0.1") == {"active": False}, "grace end is enforced before the job runs"
    assert grace_periods_end()["api_keys_revoked"] == 1
    assert ApiKey.objects.get(pk=old.pk).status == "revoked"
    assert grace_periods_end()["api_keys_revoked"] == 0
    assert verify(new_plain, ip="10.0.0.1")["active"] is True


def test_quota_and_rate_limit_reported_and_enforced(key_owner):
    _, plaintext = api_key_create(client=key_owner, name="lim", rate_limit=(3, 3600), quota=5)
    answers = [verify(plaintext) for _ in range(4)]
    assert [a["active"] for a in answers] == [True, True, True, False]
    assert answers[0]["quota"] == {"limit": 5, "remaining": 4}
    assert answers[0]["rate_limit"]["remaining"] == 2 and answers[2]["rate_limit"]["remaining"] == 0
    assert answers[3]["rate_limited"] is True and answers[3]["retry_after"] >= 1


def test_usage_is_counted_without_database_writes_and_rolled_up(key_owner):
    from keys.jobs import usage_roll_up

    key, plaintext = api_key_create(client=key_owner, name="u")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            verify(plaintext, ip="198.51.100.4")
    assert not [q for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    rolled = usage_roll_up()
    assert rolled["requests"] == 5
    key.refresh_from_db()
    assert key.uses == 5 and key.last_used_ip == "198.51.100.4" and key.last_used is not None
    assert key.usage.get().requests == 5
    assert usage_roll_up()["requests"] == 0


def test_counter_store_down_fails_closed_for_limited_keys(key_owner, monkeypatch):
    _, limited = api_key_create(client=key_owner, name="lim", quota=10)
    _, plain = api_key_create(client=key_owner, name="plain")

    def broken(*args, **kwargs):
        raise counters.CountersUnavailable("down")

    monkeypatch.setattr(counters.backend(), "consume", broken)
    monkeypatch.setattr(counters.backend(), "quota_take", broken)
    with pytest.raises(counters.CountersUnavailable):
        verify(limited)
    assert verify(plain)["active"] is True  # nothing to count: unaffected
