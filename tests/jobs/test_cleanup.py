"""The cleanup job: what it deletes, what it keeps, and that a real worker runs it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from authserver.oauth.models import AccessToken, Grant, RefreshToken
from authserver.oauth.services import tokens_cleanup
from authserver.oauth.tasks import cleanup_expired_credentials
from clients.models import RetiredClientSecret
from clients.services import client_secret_rotate
from tests.helpers import client_credentials


def _issue(client, app, secret, n):
    return [client_credentials(client, app, secret).json()["access_token"] for _ in range(n)]


@pytest.mark.django_db
def test_cleanup_deletes_only_expired_and_is_idempotent(client, service_client):
    app, secret = service_client
    _issue(client, app, secret, 5)
    expired = list(AccessToken.objects.values_list("pk", flat=True)[:3])
    AccessToken.objects.filter(pk__in=expired).update(expires=timezone.now() - timedelta(seconds=1))
    client_secret_rotate(client=app, grace=timedelta(seconds=0))
    app.refresh_from_db()
    RetiredClientSecret.objects.create(client=app, secret="authserver_sha256$" + "0" * 64, hint="cs_…0000",
                                       expires=timezone.now() - timedelta(seconds=1))

    first = tokens_cleanup(batch_size=2)
    assert first["access_tokens"] == 3
    assert first["retired_client_secrets"] == 1
    assert AccessToken.objects.count() == 2
    assert not AccessToken.objects.filter(pk__in=expired).exists()
    assert tokens_cleanup(batch_size=2) == {
        "refresh_tokens": 0, "access_tokens": 0, "authorization_codes": 0, "device_authorizations": 0,
        "retired_client_secrets": 0,
    }


@pytest.mark.django_db
def test_cleanup_keeps_revoked_refresh_tokens_until_family_deadline(web_client, user):
    app, _ = web_client
    live = timezone.now() + timedelta(days=1)
    at = AccessToken.objects.create(application=app, user=user, expires=timezone.now() - timedelta(hours=1),
                                    token_checksum="a" * 64)
    rt = RefreshToken.objects.create(application=app, user=user, access_token=at, token_checksum="b" * 64,
                                     family_expires=live, revoked=timezone.now())
    tokens_cleanup()
    assert RefreshToken.objects.filter(pk=rt.pk).exists(), "reuse detection needs the revoked token"
    assert AccessToken.objects.filter(pk=at.pk).exists(), "a refresh token still points at it"
    RefreshToken.objects.filter(pk=rt.pk).update(family_expires=timezone.now() - timedelta(seconds=1))
    counts = tokens_cleanup()
    assert counts["refresh_tokens"] == 1 and counts["access_tokens"] == 1


@pytest.mark.django_db
def test_cleanup_keeps_used_codes_for_the_retention_window(web_client, user, settings):
    app, _ = web_client
    from authserver import credentials

    grant = Grant.objects.create(application=app, user=user, code=credentials.mint("ac"), redirect_uri="x",
                                 expires=timezone.now() - timedelta(seconds=30), used=timezone.now())
    tokens_cleanup()
    assert Grant.objects.filter(pk=grant.pk).exists()
    Grant.objects.filter(pk=grant.pk).update(
        expires=timezone.now() - timedelta(seconds=settings.GRANT_RETENTION_SECONDS + 1))
    assert tokens_cleanup()["authorization_codes"] == 1


def test_cleanup_runs_on_a_real_worker(celery_worker_process, client, service_client):
    app, secret = service_client
    _issue(client, app, secret, 3)
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    cleanup_expired_credentials.delay()
    deadline = time.monotonic() + 30
    while AccessToken.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not AccessToken.objects.exists(), celery_worker_process.log_path.read_text()[-2000:]


@pytest.mark.django_db
def test_cleanup_deletes_device_authorizations_after_the_retention_window(settings):
    from authserver.oauth.device.models import DeviceAuthorization
    from authserver.oauth.device.services import device_authorization_start
    from tests.factories import make_client

    app, _ = make_client(name="device", client_type="public", grant_types=["device_code"])
    old, _, _ = device_authorization_start(client=app, scopes=[], resources=[])
    live, _, _ = device_authorization_start(client=app, scopes=[], resources=[])
    DeviceAuthorization.objects.filter(pk=old.pk).update(
        expires=timezone.now() - timedelta(seconds=settings.GRANT_RETENTION_SECONDS + 1))
    assert tokens_cleanup()["device_authorizations"] == 1
    assert list(DeviceAuthorization.objects.values_list("pk", flat=True)) == [live.pk]
