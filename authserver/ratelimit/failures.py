"""Budgets of failed client authentications (issue 12, items 12 and 13; ASVS 2.2.1).

A budget of failures per network alone let one client's failures lock every other client on the
same address out, correct secrets included (a shared NAT or egress proxy). So failures are
counted per *(client id, network)* for client ids that exist, and per *network* for the rest:

* before any work, a request naming a client id whose own budget on this network is spent is
  refused (429), whatever its secret: the budget stops guessing, a right guess included;
* after a failed authentication, the failure is counted on the network's budget, and on the
  client's own if the id exists; it is answered 429 instead of 401 once the network's budget (or
  its own) is spent.

Correct credentials are refused only by their own client's budget on their own network, never by
another client's failures. The answer never says whether an id exists: a wrong secret for a real
id and any secret for an unknown id both answer 401 while the network's budget lasts and 429 once
it is spent (every failure counts on the network's budget, so both run out at the same moment);
only the right secret answers otherwise. Both budgets share one policy, ``token.auth_failure.ip``,
and every machine endpoint that authenticates clients (token, introspection, revocation) spends
it, so guessing cannot move from one to another. Unknown ids never get a counter of their own: an
attacker can't grow the store by inventing ids.
"""

from __future__ import annotations

from oauth2_provider.models import get_application_model

from authserver.ratelimit.limiter import (
    Decision,
    RateLimited,
    already_exceeded,
    enforce_unless_exceeded,
    limit_for,
)

POLICY = "token.auth_failure.ip"
_MAX_CLIENT_ID = 100  # the longest client id a client can have (clients.models); longer is unknown


def _client_subject(client_id: str, network: str) -> str:
    return f"client={client_id}|{network}"


def _budgeted(client_id: str | None) -> bool:
    """Could ``client_id`` have a budget of its own? (No query: unknown ids simply have an empty one.)"""
    return bool(client_id) and len(client_id or "") <= _MAX_CLIENT_ID


def failure_budget_check(*, client_id: str | None, network: str) -> None:
    """Before verifying a client's credentials: raise RateLimited if its own budget on ``network``
    is spent. No query: an unknown id has no budget of its own, so it is never refused here."""
    if client_id and _budgeted(client_id):
        blocked = already_exceeded(POLICY, _client_subject(client_id, network))
        if blocked is not None:
            raise RateLimited(blocked)


def network_limit_and_budget_check(policy: str, *, network: str, client_id: str | None) -> Decision:
    """``enforce(policy, network)`` then :func:`failure_budget_check`, the same decisions in one
    round trip to the counter store: what an endpoint that authenticates clients checks before
    any work. Returns the per-network decision (its RateLimit fields); raises RateLimited."""
    checked = (POLICY, _client_subject(client_id, network)) if client_id and _budgeted(client_id) else None
    return enforce_unless_exceeded(policy, network, checked=checked)


def failure_record(*, client_id: str | None, network: str) -> Decision | None:
    """After a failed client authentication: count it; the refusal to answer with (429) instead of
    401 if a budget it counts against is spent, else None."""
    # A NUL is in no client_id (PostgreSQL text cannot hold one): asking would answer 503.
    known = bool(client_id) and len(client_id or "") <= _MAX_CLIENT_ID and "\x00" not in (client_id or "") and (
        get_application_model().objects.filter(client_id=client_id).exists())
    refusals = [limit_for(POLICY, network)]
    if known and client_id:
        refusals.append(limit_for(POLICY, _client_subject(client_id, network)))
    return next((d for d in refusals if not d.allowed), None)
