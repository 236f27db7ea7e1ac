from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.webhooks.receiver import receiver


@pytest.fixture
def hook_receiver(settings: Any) -> Iterator[Any]:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True  # the development override: http on loopback only
    with receiver() as server:
        yield server
