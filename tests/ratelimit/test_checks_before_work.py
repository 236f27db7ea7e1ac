"""The checks before any work in one round trip (limiter.enforce_unless_exceeded,
failures.network_limit_and_budget_check): the same decisions as ``enforce`` then
``already_exceeded``, on both stores, and each policy's own failure mode when the store is down."""

from __future__ import annotations

import random

import pytest

from authserver import counters
from authserver.ratelimit import failures, limiter
from authserver.ratelimit.limiter import LimiterUnavailable, RateLimited

pytestmark = pytest.mark.django_db
T0 = 1_800_000_000.0


@pytest.fixture
def small_limits(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.ip": ("6/60", "local"),
                            failures.POLICY: ("3/60", "local")}


def _outcome(call):
    try:
        decision = call()
    except RateLimited as exc:
        decision = exc.decision
        return ("refused", decision.policy.name, decision.limit, decision.remaining, decision.reset,
                decision.first_refusal)
    return ("admitted", decision.policy.name, decision.limit, decision.remaining, decision.reset,
            decision.first_refusal)


def _separate(network: str, subject: str, now: float) -> limiter.Decision:
    decision = limiter.enforce("token.ip", network, now=now)
    blocked = limiter.already_exceeded(failures.POLICY, subject, now=now)
    if blocked is not None:
        raise RateLimited(blocked)
    return decision


def _combined(network: str, subject: str, now: float) -> limiter.Decision:
    return limiter.enforce_unless_exceeded("token.ip", network, checked=(failures.POLICY, subject), now=now)


@pytest.mark.parametrize("seed", range(6))
def test_one_round_trip_decides_as_the_separate_checks(window_store, small_limits, seed):
    # Two networks in the same store, one checked each way: requests and failed authentications
    # at generated times, across window and bucket boundaries.
    rng = random.Random(seed)
    now = T0
    answers: dict[str, list[tuple]] = {"separate": [], "combined": []}
    for _ in range(120):
        now += rng.choice([0.0, 0.3, 1.0, 4.0, 17.0])
        failed = rng.random() < 0.3
        for way, check, network in (("separate", _separate, "192.0.2.1"), ("combined", _combined, "192.0.2.2")):
            subject = f"client=c1|{network}"
            if failed:
                answers[way].append(("failure", limiter.limit_for(failures.POLICY, subject, now=now).allowed))
            else:
                answers[way].append(_outcome(lambda: check(network, subject, now)))  # noqa: B023
    assert answers["combined"] == answers["separate"]
    kinds = {answer[0] for answer in answers["combined"]}
    assert {"admitted", "refused", "failure"} <= kinds, "the sequence met every kind of answer"
    assert {a[1] for a in answers["combined"] if a[0] == "refused"} == {"token.ip", failures.POLICY}


def test_without_a_client_id_only_the_network_is_counted(window_store, small_limits):
    for _ in range(6):
        failures.network_limit_and_budget_check("token.ip", network="192.0.2.9", client_id=None)
    with pytest.raises(RateLimited) as refused:
        failures.network_limit_and_budget_check("token.ip", network="192.0.2.9", client_id="x" * 101)
    assert refused.value.decision.policy.name == "token.ip"


class _Down:
    """A store that can't be reached, and remembers whether it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    def windows(self, *args, **kwargs):
        self.asked += 1
        raise counters.CountersUnavailable("down")


@pytest.fixture
def down(monkeypatch):
    store = _Down()
    monkeypatch.setattr(counters, "_backend", store)
    return store


def _limits(settings, network_mode: str, budget_mode: str) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "token.ip": ("2/60", network_mode),
                            failures.POLICY: ("1/60", budget_mode)}


@pytest.mark.parametrize("budget_mode", ["local", "closed", "process"])
def test_a_closed_network_limit_refuses_when_the_store_is_down(settings, down, budget_mode):
    _limits(settings, "closed", budget_mode)
    with pytest.raises(LimiterUnavailable, match="token.ip"):
        failures.network_limit_and_budget_check("token.ip", network="192.0.2.1", client_id="c1")


def test_a_closed_budget_refuses_a_named_client_when_the_store_is_down(settings, down):
    _limits(settings, "local", "closed")
    with pytest.raises(LimiterUnavailable, match=failures.POLICY):
        failures.network_limit_and_budget_check("token.ip", network="192.0.2.1", client_id="c1")
    # No client id: no budget of its own to read, so nothing needs the store but the local window.
    assert failures.network_limit_and_budget_check("token.ip", network="192.0.2.1", client_id=None).allowed


@pytest.mark.parametrize("network_mode", ["local", "process"])
def test_local_and_process_count_in_this_process_when_the_store_is_down(settings, down, network_mode):
    _limits(settings, network_mode, "local")
    decisions = [_outcome(lambda: failures.network_limit_and_budget_check(
        "token.ip", network="192.0.2.1", client_id="c1", )) for _ in range(3)]
    assert [d[0] for d in decisions] == ["admitted", "admitted", "refused"]
    assert decisions[2][1] == "token.ip"
    # The budget, counted in this process while the store is down, refuses the named client.
    limiter.limit_for(failures.POLICY, "client=c2|192.0.2.3")
    with pytest.raises(RateLimited) as refused:
        failures.network_limit_and_budget_check("token.ip", network="192.0.2.3", client_id="c2")
    assert refused.value.decision.policy.name == failures.POLICY


def test_process_policies_never_ask_the_store(settings, down):
    _limits(settings, "process", "process")
    assert failures.network_limit_and_budget_check("token.ip", network="192.0.2.1", client_id="c1").allowed
    assert limiter.already_exceeded(failures.POLICY, "client=c1|192.0.2.1") is None
    assert down.asked == 0
