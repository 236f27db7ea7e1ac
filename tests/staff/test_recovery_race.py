"""A recovery code is single use even when two requests present it at the same moment
(authserver.staff.services.recovery_code_use burns it with one DELETE)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from authserver.staff.services import recovery_code_use, recovery_codes_generate
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs concurrent writers (SQLite serialises them); runs in the PostgreSQL pass"),
]


def test_the_same_code_presented_eight_times_at_once_passes_once():
    user = UserFactory(is_staff=True)
    codes = recovery_codes_generate(user=user, actor="test")
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def attempt() -> None:
        try:
            device = StaticDevice.objects.get(user=user)
            barrier.wait(timeout=10)
            results.append(recovery_code_use(device=device, code=codes[0]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False] * 7 + [True]
    assert StaticToken.objects.filter(device__user=user).count() == 9


def test_a_wrong_code_counts_against_the_device_and_burns_nothing():
    user = UserFactory(is_staff=True)
    recovery_codes_generate(user=user, actor="test")
    device = StaticDevice.objects.get(user=user)
    assert recovery_code_use(device=device, code="aaaa-bbbb-cccc-dddd") is False
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert StaticToken.objects.filter(device=device).count() == 10
