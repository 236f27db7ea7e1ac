"""The live WSGI application for schemathesis, inside the test's database transaction, and one
hypothesis run per API operation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from authserver import handlers


@contextmanager
def wsgi_application() -> Iterator[Any]:
    """``authserver.wsgi``'s application (both handlers, every middleware), as production runs it.

    As django.test.Client does, the request signals leave the connection alone, so every request
    sees (and rolls back with) the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield handlers.Dispatcher()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def generous_rate_limits(settings: Any) -> None:
    """Every policy at a limit no fuzz run reaches: a 429 would hide the code behind it."""
    settings.RATE_LIMITS = {name: ("100000000/60", mode) for name, (_, mode) in settings.RATE_LIMITS.items()}


def fuzz_operation(schema: Any, method: str, path: str, *, max_examples: int,
                   call: Callable[[Any], None], shrink: bool = True) -> None:
    """Run ``call(case)`` on positive and negative cases of one operation, under the suite's profile.

    schemathesis's own pytest integration (``from_fixture``) does not run on pytest 9, so the
    hypothesis test is built here: one per operation, a bounded number of examples each.
    ``shrink=False`` for a known failure (a strict xfail): finding it is enough.
    """
    operation = schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    phases = [Phase.explicit, Phase.reuse, Phase.generate, *([Phase.shrink] if shrink else [])]

    @hypothesis_settings(max_examples=max_examples, phases=phases)
    @given(case=strategy)
    def run(case: Any) -> None:
        call(case)

    run()
