from __future__ import annotations

from typing import Any

import pytest

from tests.factories import RS_AUDIENCE, make_client


@pytest.fixture
def key_owner(db: Any) -> Any:
    client, _ = make_client(name="customer", scopes=["ai.infer", "ai.embed"],
                            audiences=[RS_AUDIENCE, "https://other-api.example.test"])
    return client
