"""Admin: addresses only with the personal-data permission; handling needs change permission and POST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission

from authserver.anomaly.models import Anomaly, AnomalyStatus, Signal
from tests.factories import UserFactory
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def anomaly(db):
    anomaly = Anomaly(signal=Signal.AUTH_FAILURES, subject="net:abc", series="authfail:abc",
                      minute=datetime.now(UTC).replace(second=0, microsecond=0), evidence={"count": 50},
                      personal={"address": "203.0.113.9"})
    anomaly.save()
    return anomaly


def _staff(*codenames):
    user = UserFactory(username="staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_addresses_need_the_personal_data_permission(client, anomaly):
    url = f"/{settings.ADMIN_PATH}/anomaly/anomaly/{anomaly.pk}/change/"
    staff_login(client, _staff("view_anomaly"))
    page = client.get(url)
    assert page.status_code == 200 and b"<svg" in page.content
    assert b"203.0.113.9" not in page.content
    staff_login(client, _staff("view_anomaly", "view_personal_data"))
    assert b"203.0.113.9" in client.get(url).content


def test_handling_needs_the_change_permission(client, anomaly):
    url = f"/{settings.ADMIN_PATH}/anomaly/anomaly/{anomaly.pk}/handle/resolve/"
    staff_login(client, _staff("view_anomaly"))
    assert client.post(url).status_code == 403
    staff_login(client, _staff("view_anomaly", "change_anomaly"))
    assert client.post(url).status_code == 302
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED
    dashboard = client.get(f"/{settings.ADMIN_PATH}/anomaly/anomaly/dashboard/")
    assert dashboard.status_code == 200 and b"No open anomalies" in dashboard.content
    assert client.get(f"/{settings.ADMIN_PATH}/anomaly/anomaly/").status_code == 200
    assert client.get(f"/{settings.ADMIN_PATH}/anomaly/baseline/").status_code == 403  # no baseline permission
