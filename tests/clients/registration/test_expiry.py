"""Unused self-registered clients expire (AUTHSERVER_DCR_UNUSED_SECONDS); used ones never do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from authserver.audit.models import AuditEvent
from authserver.oauth.models import AccessToken, RefreshToken
from clients.models import Client
from clients.registration.models import Registration
from clients.registration.tasks import expire_unused
from tests.clients.registration.conftest import GOOD, NATIVE, post
from tests.helpers import authorize, code_from, exchange_code, pkce_pair

pytestmark = pytest.mark.django_db


def _register(client: Any, name: str, age: timedelta) -> Client:
    app = Client.objects.get(client_id=post(client, {**GOOD, "client_name": name}).json()["client_id"])
    Registration.objects.filter(client=app).update(created_at=timezone.now() - age)
    return app


def test_only_registrations_that_never_obtained_a_token_expire(client: Any, dcr: Any, user: Any,
                                                               web_client: Any) -> None:
    dcr.DCR_UNUSED_SECONDS = 3600
    stale = _register(client, "stale", timedelta(hours=2))
    fresh = _register(client, "fresh", timedelta(minutes=10))
    used = _register(client, "used", timedelta(hours=2))
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, used, challenge=challenge, redirect_uri=NATIVE))
    assert exchange_code(client, used, None, code, verifier, redirect_uri=NATIVE).status_code == 200
    # Its tokens gone (revoked and cleaned up) does not make it unused: first_token_at remembers.
    RefreshToken.objects.filter(application=used).delete()
    AccessToken.objects.filter(application=used).delete()
    old_manual = web_client[0]
    Client.objects.filter(pk=old_manual.pk).update(created=timezone.now() - timedelta(days=30))

    assert expire_unused() == 1
    assert set(Client.objects.values_list("name", flat=True)) == {"fresh", "used", old_manual.name}
    event = AuditEvent.objects.get(event="client.registration_expired")
    assert event.details["client_ids"] == [stale.client_id] and event.details["count"] == 1
    assert event.actor == "job:registration.expire_unused"
    assert expire_unused() == 0 and AuditEvent.objects.filter(event="client.registration_expired").count() == 1
    assert fresh.pk is not None


def test_the_schedule_exists(db: Any) -> None:
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="registration.expire_unused")
    assert task.enabled and task.interval.every == 15
