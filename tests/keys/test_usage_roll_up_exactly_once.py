"""The usage roll-up counts each use exactly once (issue 12 item 2), whatever step it dies at.

Seen before: the roll-up drained the counter store before writing the database; with the database
down a retry found nothing (50 of 50 uses lost). Each case below kills a run at one step, then a
second run must bring the database to exactly the counted uses, and a third must add nothing.
Runs against the configured counter store: the SQLite file, or Redis in the PostgreSQL pass.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError

from keys import jobs
from keys.models import ApiKey, ApiKeyUsage, UsageBatch
from keys.services import api_key_create
from keys.usage import usage_pending
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE


class Crash(Exception):
    """The job's process dying at that point."""


def _use(plaintext: str, n: int, ip: str) -> None:
    for _ in range(n):
        assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=ip)["active"] is True


def _totals(*keys: Any) -> dict[Any, tuple[int, int]]:
    """Per key: (uses, the sum of its hourly rows)."""
    return {key.pk: (ApiKey.objects.get(pk=key.pk).uses,
                     sum(ApiKeyUsage.objects.filter(key_id=key.pk).values_list("requests", flat=True)))
            for key in keys}


def _crash_in_database_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database goes away after the first key's rows were written, inside the transaction."""
    real = ApiKeyUsage.objects.get_or_create
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(ApiKeyUsage.objects, "get_or_create", failing)


def _crash(step: str) -> Any:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash(step)
    return crash


CRASHES = {
    # the store can't move the counts at all (down)
    "stage": lambda mp: mp.setattr(jobs, "usage_stage", _crash("stage")),
    # after the store moved the counts into a pending batch, before the database saw them
    "after the move": lambda mp: mp.setattr(jobs, "usage_pending", _crash("after the move")),
    # the database fails halfway through writing a batch
    "database writes": _crash_in_database_writes,
    # after the database committed the batch, before the store forgot it
    "after the commit": lambda mp: mp.setattr(jobs, "usage_settle", _crash("after the commit")),
}


@pytest.mark.parametrize("step", list(CRASHES))
def test_a_roll_up_that_dies_at_any_step_then_runs_again_counts_each_use_once(key_owner, monkeypatch, step):
    busy, busy_plaintext = api_key_create(client=key_owner, name="busy")
    calm, calm_plaintext = api_key_create(client=key_owner, name="calm")
    _use(busy_plaintext, 7, "203.0.113.7")
    _use(calm_plaintext, 3, "2001:db8::1")

    with monkeypatch.context() as mp:
        CRASHES[step](mp)
        with pytest.raises((Crash, OperationalError)):
            jobs.usage_roll_up()
    _use(busy_plaintext, 2, "203.0.113.8")  # uses counted between the two runs

    jobs.usage_roll_up()
    assert _totals(busy, calm) == {busy.pk: (9, 9), calm.pk: (3, 3)}
    assert ApiKey.objects.get(pk=busy.pk).last_used_ip == "203.0.113.8"
    assert usage_pending() == {}, "nothing left pending"
    assert jobs.usage_roll_up() == {"keys": 0, "requests": 0}
    assert _totals(busy, calm) == {busy.pk: (9, 9), calm.pk: (3, 3)}


def test_a_batch_recorded_but_not_settled_is_not_counted_again(key_owner, monkeypatch):
    key, plaintext = api_key_create(client=key_owner, name="k")
    _use(plaintext, 4, "203.0.113.7")
    with monkeypatch.context() as mp:
        mp.setattr(jobs, "usage_settle", _crash("after the commit"))
        with pytest.raises(Crash):
            jobs.usage_roll_up()
    assert _totals(key) == {key.pk: (4, 4)}
    (batch_id,) = usage_pending()
    assert UsageBatch.objects.filter(pk=batch_id).exists(), "recorded with the counts, in one transaction"
    assert jobs.usage_roll_up() == {"keys": 0, "requests": 0}, "the re-run only settles it"
    assert _totals(key) == {key.pk: (4, 4)} and usage_pending() == {}


def test_a_batch_left_pending_is_rolled_up_before_the_newer_one(key_owner, monkeypatch):
    key, plaintext = api_key_create(client=key_owner, name="k")
    _use(plaintext, 1, "203.0.113.1")
    with monkeypatch.context() as mp:
        mp.setattr(jobs, "usage_pending", _crash("after the move"))
        with pytest.raises(Crash):
            jobs.usage_roll_up()
    _use(plaintext, 1, "203.0.113.2")
    jobs.usage_roll_up()  # both batches, oldest first
    assert ApiKey.objects.get(pk=key.pk).last_used_ip == "203.0.113.2"
