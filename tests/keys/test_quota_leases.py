"""Quotas counted inside blocks leased from the database (keys.quota; issue 12 item 3): a counter
store that loses its counters never over-grants, and under-grants at most one block per key."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from authserver import counters, revocation
from keys import quota as quota_module
from keys.models import ApiKey
from keys.quota import LEASE_BLOCK_MAX, lease_block
from keys.services import api_key_create
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE


def verify(plaintext: str) -> dict:
    return api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip="198.51.100.4")


def active_until_refused(plaintext: str, *, most: int) -> int:
    """Verify until the first refusal; how many were active (at most ``most``)."""
    for n in range(most + 1):
        if not verify(plaintext)["active"]:
            return n
    raise AssertionError(f"still active after {most} uses")


@pytest.mark.parametrize(("quota", "block"), [(1, 1), (5, 1), (20, 1), (21, 2), (100, 5), (10**9, LEASE_BLOCK_MAX)])
def test_lease_block(quota, block):
    assert lease_block(quota) == block


def test_the_database_is_written_once_per_block(key_owner):
    key, plaintext = api_key_create(client=key_owner, name="q", quota=100)  # blocks of 5
    verify(plaintext)
    with CaptureQueriesContext(connection) as queries:
        answers = [verify(plaintext) for _ in range(9)]
    assert [a["quota"]["remaining"] for a in answers] == list(range(98, 89, -1))
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(writes) == 2 * 1, "one lease (a lock, then the raise) for uses 6-10"
    assert ApiKey.objects.get(pk=key.pk).quota_leased == 10


@pytest.mark.parametrize(("quota", "before_loss", "at_least"), [
    (5, 3, 5),  # blocks of 1: nothing forgone
    (100, 3, 95),  # blocks of 5: at most one block forgone
    (100, 5, 95),  # the loss exactly at a block's end
])
def test_a_store_that_loses_its_counters_never_over_grants(key_owner, quota, before_loss, at_least):
    _, plaintext = api_key_create(client=key_owner, name="q", quota=quota)
    assert all(verify(plaintext)["active"] for _ in range(before_loss))
    counters.wipe_for_tests()  # Redis restarted without persistence, or the embedded file deleted
    revocation.clear_caches()
    total = before_loss + active_until_refused(plaintext, most=quota)
    assert at_least <= total <= quota


def test_the_uses_not_yet_rolled_up_are_not_granted_again(key_owner):
    """Today's failure: a lost counter restarted from ``uses`` (0: not rolled up yet)."""
    key, plaintext = api_key_create(client=key_owner, name="q", quota=5)
    assert all(verify(plaintext)["active"] for _ in range(3))
    assert ApiKey.objects.get(pk=key.pk).uses == 0
    counters.wipe_for_tests()
    assert active_until_refused(plaintext, most=5) == 2


def test_a_lowered_quota_is_read_fresh_at_the_next_lease(key_owner):
    key, plaintext = api_key_create(client=key_owner, name="q", quota=40)  # blocks of 2
    assert all(verify(plaintext)["active"] for _ in range(2))
    ApiKey.objects.filter(pk=key.pk).update(quota=3)  # the cached row still says 40
    assert verify(plaintext)["active"] is True
    assert verify(plaintext) == {"active": False}
    assert ApiKey.objects.get(pk=key.pk).quota_leased == 3


def test_no_lease_without_the_database_fails_closed(key_owner, monkeypatch):
    _, plaintext = api_key_create(client=key_owner, name="q", quota=5)
    assert verify(plaintext)["active"] is True

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(quota_module.ApiKey.objects, "filter", down)
    with pytest.raises(counters.CountersUnavailable):
        verify(plaintext)  # the endpoint answers 503: never a guess
    monkeypatch.undo()
    assert verify(plaintext)["active"] is True


def test_an_exhausted_quota_is_refused_without_the_database(key_owner):
    _, plaintext = api_key_create(client=key_owner, name="q", quota=2)
    assert active_until_refused(plaintext, most=2) == 2
    with CaptureQueriesContext(connection) as queries:
        assert verify(plaintext) == {"active": False}
    assert not [q for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
