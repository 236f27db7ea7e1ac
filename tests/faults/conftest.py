"""Fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authserver import counters, revocation
from authserver.ratelimit import limiter
from tests.faults.redis import ThrowawayRedis


@pytest.fixture
def redis_server(settings) -> Iterator[ThrowawayRedis]:
    """A throwaway Redis as the configured one, for a test to kill (a module may define its own)."""
    server = ThrowawayRedis()
    server.start()
    settings.REDIS_URL = server.url
    counters.reset_for_tests()
    revocation.reset_for_tests()
    limiter.reset_for_tests()
    try:
        yield server
    finally:
        server.kill()
        counters.reset_for_tests()
        revocation.reset_for_tests()
        limiter.reset_for_tests()
