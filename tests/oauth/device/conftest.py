"""Fixtures of the device flow tests: a public and a confidential client registered for the grant."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_client


@pytest.fixture
def device_client(db: Any) -> Any:
    client, _ = make_client(name="Terminal agent", client_type="public", grant_types=["device_code"],
                            scopes=["ai.infer", "ai.admin"])
    return client


@pytest.fixture
def confidential_device_client(db: Any) -> tuple[Any, str]:
    client, secret = make_client(name="Build robot", grant_types=["device_code"], scopes=["ai.infer"])
    assert secret is not None
    return client, secret
