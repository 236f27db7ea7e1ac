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
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.fuzz.oauth_cases import DOCUMENT, make_world
from tests.fuzz.wsgi import generous_rate_limits, wsgi_application

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


@pytest.fixture
def world(client: Any) -> dict[str, Any]:
    """Registered clients, live credentials of each kind, and a signed-in user's cookies."""
    return make_world(client)


@pytest.fixture
def oauth_schema(world: dict[str, Any], settings: Any) -> Iterator[Any]:
    """docs/openapi-oauth.yaml on the live WSGI application.

    After ``world``: the test client it uses reconnects the request signals when it is done.
    """
    generous_rate_limits(settings)
    with wsgi_application() as app:
        schema = schemathesis.openapi.from_path(str(DOCUMENT))
        schema.app = app
        yield schema
