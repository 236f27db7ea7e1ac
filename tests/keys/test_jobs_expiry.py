"""The API-key expiry jobs: signed webhook and e-mail warnings before a key expires, expired keys
recorded, and rotation grace periods ended on a real Celery worker.

A real HTTP receiver takes the webhooks; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from keys import jobs, services, tasks
from keys.models import ApiKey, ApiKeyStatus
from keys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_suspend
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE, make_client
from tests.keys.conftest import credential_state, wait_for


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def verify_webhook_signature(header: str, body: bytes, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: ``t=<unix>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``, recent t only."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(jobs.webhook_signing_key(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


@pytest.mark.django_db
def test_expiry_warnings_signed_webhook_and_email_once(settings, webhook_receiver, key_owner):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    port = webhook_receiver.server_address[1]
    key_owner.webhook_url = f"http://127.0.0.1:{port}/hooks/authserver"
    key_owner.contact_email = "ops@customer.example"
    key_owner.full_clean()
    key_owner.save(update_fields=["webhook_url", "contact_email"])
    quiet, _ = make_client(name="no contact")  # warned (recorded) but nobody to tell

    soon, soon_plaintext = api_key_create(client=key_owner, name="prod-eu", expires_in=timedelta(days=2))
    api_key_create(client=key_owner, name="far", expires_in=timedelta(days=60))
    revoked, _ = api_key_create(client=key_owner, name="revoked", expires_in=timedelta(days=2))
    api_key_revoke(key=revoked)
    suspended, _ = api_key_create(client=key_owner, name="suspended", expires_in=timedelta(days=2))
    api_key_suspend(key=suspended)
    rotated, _ = api_key_create(client=key_owner, name="rotated", expires_in=timedelta(days=60))
    api_key_rotate(key=rotated, grace=timedelta(hours=1))  # grace_ends soon: rotation, not expiry
    gone, _ = api_key_create(client=key_owner, name="gone", expires_in=timedelta(days=2))
    ApiKey.objects.filter(pk=gone.pk).update(expires=timezone.now() - timedelta(minutes=1))
    silent, _ = api_key_create(client=quiet, name="silent", expires_in=timedelta(days=1))

    started = int(time.time())
    assert jobs.expiry_warnings_send() == 2

    assert len(webhook_receiver.received) == 1
    hook = webhook_receiver.received[0]
    assert hook["path"] == "/hooks/authserver"
    assert hook["headers"]["Content-Type"] == "application/json"
    payload = json.loads(hook["body"])
    assert payload == {"type": "api_key.expiring", "key_id": str(soon.id), "key_hint": soon.hint,
                       "name": "prod-eu", "client_id": key_owner.client_id,
                       "expires": payload["expires"]}
    assert abs(datetime.fromisoformat(payload["expires"]) - soon.expires) < timedelta(seconds=1)
    signature = hook["headers"]["Authserver-Signature"]
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert started <= timestamp <= time.time()
    assert signature == jobs.sign_webhook(hook["body"], timestamp)
    assert verify_webhook_signature(signature, hook["body"]) is True
    assert soon_plaintext not in hook["body"].decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@customer.example"]
    assert "prod-eu" in message.subject and soon.hint in message.body
    assert soon_plaintext not in message.subject + message.body

    warned = set(ApiKey.objects.filter(expiry_warned__isnull=False).values_list("pk", flat=True))
    assert warned == {soon.pk, silent.pk}

    # A second run finds nothing to say.
    assert jobs.expiry_warnings_send() == 0
    assert len(webhook_receiver.received) == 1 and len(mail.outbox) == 1


@pytest.mark.django_db  # the signing key lives in the key store
def test_webhook_signature_check_rejects_tampering():
    body = json.dumps({"type": "api_key.expiring", "key_id": "k1"}, sort_keys=True).encode()
    now = int(time.time())
    header = jobs.sign_webhook(body, now)
    assert verify_webhook_signature(header, body) is True
    assert verify_webhook_signature(header, body.replace(b"k1", b"k2")) is False  # tampered body
    assert verify_webhook_signature(header, body + b" ") is False
    forged_time = header.replace(f"t={now}", f"t={now + 1}")
    assert verify_webhook_signature(forged_time, body) is False  # the timestamp is signed too
    assert verify_webhook_signature(header, body, now=now + 3600) is False  # replayed later
    other_key = hmac.new(b"not the signing key", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify_webhook_signature(f"t={now},v1={other_key}", body) is False
    assert verify_webhook_signature("garbage", body) is False


@pytest.mark.django_db
def test_keys_expire_marks_expired_keys_and_is_idempotent(key_owner):
    past = timezone.now() - timedelta(seconds=1)
    expired_active, plaintext = api_key_create(client=key_owner, name="a")
    expired_suspended, _ = api_key_create(client=key_owner, name="s")
    api_key_suspend(key=expired_suspended)
    expired_revoked, _ = api_key_create(client=key_owner, name="r")
    api_key_revoke(key=expired_revoked)
    live, _ = api_key_create(client=key_owner, name="live")
    ApiKey.objects.filter(pk__in=[expired_active.pk, expired_suspended.pk, expired_revoked.pk]).update(expires=past)
    versions = dict(ApiKey.objects.values_list("pk", "version"))
    # Verification refuses the key already; the job only records it.
    assert api_key_verify(key=plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    assert services.api_keys_expire() == 2
    status = dict(ApiKey.objects.values_list("pk", "status"))
    assert status == {expired_active.pk: ApiKeyStatus.EXPIRED, expired_suspended.pk: ApiKeyStatus.EXPIRED,
                      expired_revoked.pk: ApiKeyStatus.REVOKED, live.pk: ApiKeyStatus.ACTIVE}
    after = dict(ApiKey.objects.values_list("pk", "version"))
    assert after[expired_active.pk] == versions[expired_active.pk] + 1
    assert after[expired_revoked.pk] == versions[expired_revoked.pk] and after[live.pk] == versions[live.pk]

    assert services.api_keys_expire() == 0
    assert dict(ApiKey.objects.values_list("pk", "version")) == after


def test_grace_periods_end_on_a_real_worker(worker, key_owner):
    ended, ended_plaintext = api_key_create(client=key_owner, name="ended")
    successor, successor_plaintext = api_key_rotate(key=ended, grace=timedelta(hours=1))
    grace_end = timezone.now() - timedelta(seconds=1)
    ApiKey.objects.filter(pk=ended.pk).update(grace_ends=grace_end)
    in_grace, in_grace_plaintext = api_key_create(client=key_owner, name="in grace")
    api_key_rotate(key=in_grace, grace=timedelta(hours=1))
    version = ApiKey.objects.get(pk=ended.pk).version
    assert api_key_verify(key=ended_plaintext, audience=RS_AUDIENCE, client_ip=None) == {"active": False}

    tasks.grace_periods_end.delay()
    old = wait_for(lambda: ApiKey.objects.filter(pk=ended.pk, status=ApiKeyStatus.REVOKED).first(),
                    "the grace job on the worker", worker)
    assert old.revoked == grace_end and old.version == version + 1
    assert ApiKey.objects.get(pk=successor.pk).status == ApiKeyStatus.ACTIVE
    assert ApiKey.objects.get(pk=in_grace.pk).status == ApiKeyStatus.ACTIVE
    assert api_key_verify(key=successor_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True
    assert api_key_verify(key=in_grace_plaintext, audience=RS_AUDIENCE, client_ip=None)["active"] is True

    before = credential_state(key_owner)
    assert services.api_keys_grace_end() == 0
    assert credential_state(key_owner) == before
