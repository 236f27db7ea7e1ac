from __future__ import annotations

from typing import Any

import pytest

from authserver import counters, generation, hotcache
from tests.factories import RS_AUDIENCE, make_client


@pytest.fixture(autouse=True)
def _fresh_caches(settings: Any, tmp_path: Any) -> Any:
    """Each test gets empty in-process caches and its own embedded counter store."""
    hotcache.api_keys.clear()
    hotcache.access_tokens.clear()
    if not settings.REDIS_URL:
        settings.DATA_DIR = tmp_path
    counters.reset_for_tests()
    generation.reset_for_tests()
    yield
    counters.reset_for_tests()
    generation.reset_for_tests()


@pytest.fixture
def key_owner(db: Any) -> Any:
    client, _ = make_client(name="customer", scopes=["ai.infer", "ai.embed"],
                            audiences=[RS_AUDIENCE, "https://other-api.example.test"])
    return client
