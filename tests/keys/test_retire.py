"""Every way a key stops working (rotate, revoke, suspend, the grace and expiry jobs) goes through
one retire path, so the access tokens exchanged for it (RFC 8693) die with it in every case."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from authserver.audit.models import AuditEvent
from authserver.oauth.models import AccessToken
from keys.models import ApiKey, ApiKeyStatus
from keys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_suspend, api_keys_grace_end
from tests.helpers import introspect
from tests.keys.test_exchange import exchange

pytestmark = pytest.mark.django_db


def _exchanged(client, key_owner, rs, rs_secret):
    key, plaintext = api_key_create(client=key_owner, name="k")
    token = exchange(client, plaintext).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    return key, token


@pytest.mark.parametrize(
    "retire",
    [
        lambda key: api_key_rotate(key=key, grace=timedelta(0)),
        lambda key: api_key_revoke(key=key),
        lambda key: api_key_suspend(key=key),
    ],
    ids=["rotate-without-grace", "revoke", "suspend"],
)
def test_exchanged_tokens_die_with_the_key(client, key_owner, resource_server, retire):
    rs, rs_secret = resource_server
    key, token = _exchanged(client, key_owner, rs, rs_secret)
    retire(key)
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}
    assert not AccessToken.objects.filter(source_api_key=key.pk).exists()


def test_rotation_with_grace_keeps_exchanged_tokens_until_the_grace_ends(client, key_owner, resource_server):
    rs, rs_secret = resource_server
    key, token = _exchanged(client, key_owner, rs, rs_secret)
    api_key_rotate(key=key, grace=timedelta(seconds=1))
    old = ApiKey.objects.get(pk=key.pk)
    # Still working during the grace, but never past it (real time: no cache is bypassed).
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    assert AccessToken.objects.get(source_api_key=key.pk).expires == old.grace_ends
    time.sleep(max(0.0, (old.grace_ends - timezone.now()).total_seconds()) + 0.05)
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}

    # The grace job then retires the key through the same path, as of its grace end.
    assert api_keys_grace_end(actor="job:keys.grace_periods_end") == 1
    retired = ApiKey.objects.get(pk=key.pk)
    assert retired.status == ApiKeyStatus.REVOKED and retired.revoked == old.grace_ends
    assert retired.version == old.version + 1
    assert not AccessToken.objects.filter(source_api_key=key.pk).exists()
    event = AuditEvent.objects.get(event="api_key.grace_ended", subject=f"key:{key.pk}")
    assert event.actor == "job:keys.grace_periods_end" and event.details["exchanged_tokens_revoked"] == 1
    assert api_keys_grace_end(actor="job:keys.grace_periods_end") == 0


def test_rotation_without_grace_is_one_audited_change(client, key_owner, resource_server):
    rs, rs_secret = resource_server
    key, _ = _exchanged(client, key_owner, rs, rs_secret)
    successor, _ = api_key_rotate(key=key, grace=timedelta(0), actor="cli")
    event = AuditEvent.objects.get(subject=f"key:{key.pk}", event="api_key.rotated")
    assert event.actor == "cli" and event.details["successor"] == str(successor.pk)
    assert event.details["exchanged_tokens_revoked"] == 1
    assert ApiKey.objects.get(pk=key.pk).status == ApiKeyStatus.REVOKED
