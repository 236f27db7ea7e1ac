"""Who is acting, and personal data about the current request, for audit events.

An *acting scope* spans one unit of work: a browser request (``authserver.audit.middleware``).
Outside any scope (a management command, a shell) the actor is ``cli``; jobs and services pass
their actor explicitly (``job:<task name>``). The scope says
who acts, for changes that reach the trail without an explicit ``actor`` (a password saved by a
form Django owns), and how many events the unit has written so far, so that the admin's own
change log adds no second event for a change a service already recorded (one action, one event).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from authserver.netaddr import client_address

#: The actor of a change made outside any request or job: a management command or a shell.
OUTSIDE_ANY_SCOPE = "cli"


@dataclass
class _Scope:
    actor: Callable[[], str]
    written: int = 0


_scope: ContextVar[_Scope | None] = ContextVar("audit_scope", default=None)


@contextmanager
def acting(actor: Callable[[], str]) -> Iterator[None]:
    """Open an acting scope; ``actor`` is asked only when a change needs it (lazy: no session or
    user lookup on requests that change nothing)."""
    token = _scope.set(_Scope(actor=actor))
    try:
        yield
    finally:
        _scope.reset(token)


def current_actor() -> str:
    scope = _scope.get()
    return scope.actor() if scope is not None else OUTSIDE_ANY_SCOPE


def note_written() -> None:
    """Called by every audit write (authserver.audit.services.audit_record)."""
    scope = _scope.get()
    if scope is not None:
        scope.written += 1


def written_in_scope() -> int:
    """Events written so far by the current unit of work (0 outside any scope)."""
    scope = _scope.get()
    return scope.written if scope is not None else 0


def request_personal(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    meta = getattr(request, "META", None) or getattr(request, "headers", None) or {}
    return {
        "ip": client_address(meta),
        "user_agent": str(meta.get("HTTP_USER_AGENT", ""))[:300],
    }


def actor_label(actor: Any) -> str:
    """A non-personal reference to whoever acted: ``user:<pk>``, ``cli``, ``api:<client_id>``…"""
    if actor is None:
        return "system"
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) is not None:
        return f"user:{actor.pk}"
    return str(actor)[:200]
