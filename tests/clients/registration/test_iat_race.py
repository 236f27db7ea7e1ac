"""An initial access token limited to N registrations makes exactly N, however many requests race
(the use is counted under a row lock in the registering transaction). PostgreSQL: real concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient

from clients.models import Client
from clients.registration.models import InitialAccessToken
from clients.registration.services import initial_access_token_create
from tests.clients.registration.conftest import GOOD, post

pytestmark = pytest.mark.django_db(transaction=True)


def test_racing_registrations_spend_exactly_the_allowed_uses(dcr: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite has one writer); runs in the PostgreSQL pass")
    dcr.DCR = "token"
    _, value = initial_access_token_create(uses=3, actor="test")
    barrier = threading.Barrier(8)

    def register(_: int) -> int:
        try:
            barrier.wait(timeout=10)
            return int(post(HttpClient(), GOOD, token=value).status_code)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(register, range(8)))
    assert codes == [201] * 3 + [401] * 5
    assert InitialAccessToken.objects.get().uses == 3 and Client.objects.filter(registration_source="dcr").count() == 3
