"""Fuzzing (issue 12 item 16): hypothesis properties of the parsers, schemathesis against the APIs.

One fixed hypothesis profile for the whole directory: derandomized (the examples come from each
test's name, so CI never fails on a draw a re-run would not make) and with no example database
(nothing to write into the checkout, nothing remembered between runs). The budget is set per
test with ``@settings(max_examples=...)``.

Tests marked ``fuzz`` (the schemathesis runs against the live WSGI application) are the slow
ones: they run once, in the PostgreSQL pass (CI's pass 2), which has every service the endpoints
reach. The pure parser properties are fast and run in both passes.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "authserver-ci",
    derandomize=True,
    database=None,
    deadline=None,  # a loaded CI machine must not turn a slow example into a failure
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("authserver-ci")


def _postgres_pass() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _postgres_pass():
        return
    skip = pytest.mark.skip(reason="fuzz tests run once, in the PostgreSQL pass (DATABASE_URL is not PostgreSQL)")
    for item in items:
        if item.get_closest_marker("fuzz") is not None:
            item.add_marker(skip)
