"""Checkpoints leave the machine: POSTed to a witness (failing open, sent again later), signed with a
key the key store holds (file or HSM) that survives KEK rotation; beat writes one every interval."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from authserver import conf, crypto
from authserver.audit import checkpoint_file, sealing, tasks
from authserver.audit.checkpoints import audit_checkpoint, checkpoint_path
from authserver.audit.models import AuditCheckpointState
from authserver.audit.sealer import audit_seal
from authserver.audit.services import audit_record
from authserver.celery import app
from authserver.crypto.models import DataKey
from tests.crypto.conftest import hsm, isolated_key_file, reset_crypto, softhsm  # noqa: F401 - key-store fixtures
from tests.observability.helpers import delta, samples

pytestmark = pytest.mark.django_db


class Witness:
    """A local HTTP witness: keeps each POSTed body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self.status = 204
        witness = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if witness.status < 300:
                    witness.bodies.append(body)
                    witness.content_types.append(self.headers["Content-Type"])
                self.send_response(witness.status)
                if 300 <= witness.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 - what a followed redirect would reach: must not count
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/checkpoints"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def witness(settings: Any) -> Iterator[Witness]:
    server = Witness()
    settings.AUDIT_WITNESS_URL = server.url
    yield server
    server.close()


@pytest.mark.parametrize("status", [302, 307, 400, 500])
def test_only_a_2xx_acknowledges(witness, status):
    witness.status = status
    _event()
    audit_checkpoint()
    state = AuditCheckpointState.objects.get(pk=1)
    assert (len(state.witness_pending), state.witness_failures) == (1, 1)


def _event() -> None:
    audit_record(event="test.event", subject="t:1")
    audit_seal()


def _public_keys() -> dict[str, Any]:
    return {checkpoint_file.key_id(key): key for key in [sealing.checkpoint_signing_key().public_key()]}


def test_the_witness_receives_the_signed_checkpoint(witness):
    _event()
    audit_checkpoint()
    line = checkpoint_path().read_bytes().splitlines()[-1]
    assert witness.bodies == [line] and witness.content_types == ["application/json"]
    assert checkpoint_file.verify_lines(witness.bodies, _public_keys()).problems == []


def test_a_failing_witness_fails_open_and_gets_the_checkpoints_later_in_order(witness, settings):
    _event()
    before = samples()
    witness.status = 503
    audit_checkpoint()
    _event()
    settings.AUDIT_WITNESS_URL = "http://127.0.0.1:9/nothing-listens-here"
    audit_checkpoint()  # written to the file all the same
    state = AuditCheckpointState.objects.get(pk=1)
    assert (state.written, len(state.witness_pending), state.witness_failures) == (2, 2, 2)
    assert delta(before, samples(), "authserver_audit_witness_failures_total") == 2
    out = StringIO()
    call_command("audit", "verify", stdout=out)  # the file is intact: not a problem, but shown
    assert json.loads(out.getvalue())["checkpoints"]["witness_pending"] == 2

    witness.status = 204
    settings.AUDIT_WITNESS_URL = witness.url
    audit_checkpoint()
    assert witness.bodies == checkpoint_path().read_bytes().splitlines()  # all three, oldest first
    assert checkpoint_file.verify_lines(witness.bodies, _public_keys()).problems == []
    assert AuditCheckpointState.objects.get(pk=1).witness_pending == []


@pytest.mark.parametrize("store", ["file", "pkcs11"])
def test_the_signing_key_is_a_held_secret_and_survives_kek_rotation(store, request):
    if store == "pkcs11":
        request.getfixturevalue("hsm")
    _event()
    before = audit_checkpoint()
    assert DataKey.objects.filter(purpose="secret:" + sealing.PURPOSE_CHECKPOINT).count() == 1
    raw = serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    seed = sealing.checkpoint_signing_key().private_bytes(*raw)
    held = crypto.secret(sealing.PURPOSE_CHECKPOINT)
    stored = [bytes(blob) for blob in DataKey.objects.values_list("wrapped", flat=True)]
    assert not any(seed in blob or held in blob for blob in stored)  # wrapped by the KEK, never in clear

    call_command("keys", "rotate", "--foreground", stdout=StringIO())
    reset_crypto()
    after = audit_checkpoint()
    assert after.key_id == before.key_id
    assert checkpoint_file.verify_lines(checkpoint_file.read_lines(checkpoint_path()), _public_keys()).problems == []


def test_checkpoints_of_an_earlier_key_verify_with_its_public_key(tmp_path):
    _event()
    audit_checkpoint()
    old_pem = tmp_path / "old.pem"
    out = StringIO()
    call_command("audit", "public-key", stdout=out)
    old_pem.write_text(json.loads(out.getvalue())["public_key"])
    DataKey.objects.filter(purpose="secret:" + sealing.PURPOSE_CHECKPOINT).delete()  # a new signing key
    reset_crypto()
    audit_checkpoint()
    with pytest.raises(SystemExit):
        call_command("audit", "verify", stdout=StringIO())  # line 1: signed by a key not given
    out = StringIO()
    call_command("audit", "verify", "--public-key", str(old_pem), stdout=out)
    assert json.loads(out.getvalue())["ok"] is True


def test_the_beat_entry_checkpoints_at_least_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["Audit trail: checkpoint"]
    assert entry["task"] == "audit.checkpoint" == tasks.checkpoint.name
    assert entry["task"] in app.tasks
    assert 0 < entry["schedule"] <= 60 and django_settings.AUDIT_CHECKPOINT_INTERVAL == 60
    _event()
    tasks.checkpoint.apply().get()
    assert json.loads(checkpoint_path().read_bytes().splitlines()[-1])["seq"] == 1


@pytest.mark.parametrize("url", ["ftp://witness.example/x", "witness.example", "https://"])
def test_a_witness_url_that_is_not_http_is_refused_at_start(url):
    with pytest.raises(ImproperlyConfigured, match="AUTHSERVER_AUDIT_WITNESS_URL must be an absolute"):
        conf.load({"AUTHSERVER_AUDIT_WITNESS_URL": url}, testing=False)
