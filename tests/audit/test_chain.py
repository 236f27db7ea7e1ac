"""The audit trail: every security event recorded, chained, and tamper-evident."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from authserver.audit.models import AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from authserver.audit.services import audit_record, personal_data
from clients.services import client_secret_rotate
from keys.services import api_key_create, api_key_revoke
from tests.helpers import authorize, client_credentials, code_from, exchange_code, pkce_pair, refresh

pytestmark = pytest.mark.django_db


def _events() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("event", flat=True))


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _seed(n: int = 5) -> list[AuditEvent]:
    """n sealed events (seq 1..n, in id order)."""
    events = [
        audit_record(event="test.event", subject=f"thing:{i}", details={"i": i}, personal={"ip": f"192.0.2.{i}"})
        for i in range(n)
    ]
    assert audit_seal() == n
    return events


def test_verify_passes_on_an_untouched_chain():
    _seed()
    checked, problems, unsealed = audit_verify()
    assert checked == 5 and problems == [] and unsealed.count == 0


def _swap_seq(first: AuditEvent, second: AuditEvent) -> None:
    """Swap two sealed events' places in the chain (seq is unique: through NULL)."""
    a, b = (AuditEvent.objects.values_list("seq", flat=True).get(pk=e.pk) for e in (first, second))
    _raw("UPDATE audit_auditevent SET seq = NULL WHERE id = %s", [first.id])
    _raw("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a, second.id])
    _raw("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b, first.id])


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda e: _raw("UPDATE audit_auditevent SET details = %s WHERE id = %s", [json.dumps({"i": 99}), e[2].id]), 2),
        (lambda e: _raw("UPDATE audit_auditevent SET event = %s WHERE id = %s", ["test.other", e[1].id]), 1),
        (lambda e: _raw("UPDATE audit_auditevent SET personal = %s WHERE id = %s", [bytes(e[0].personal), e[3].id]), 3),
        (lambda e: _raw("DELETE FROM audit_auditevent WHERE id = %s", [e[2].id]), 3),
        (
            lambda e: (
                _raw("UPDATE audit_auditevent SET id = %s WHERE id = %s", [e[4].id + 100, e[1].id]),
                _raw("UPDATE audit_auditevent SET id = %s WHERE id = %s", [e[1].id, e[2].id]),
                _raw("UPDATE audit_auditevent SET id = %s WHERE id = %s", [e[2].id, e[4].id + 100]),
            ),
            2,
        ),
        (lambda e: _swap_seq(e[1], e[2]), 2),
        (lambda e: _raw("UPDATE audit_auditevent SET seq = NULL, chain = NULL WHERE id = %s", [e[2].id]), 3),
        (lambda e: _raw("DELETE FROM audit_auditevent WHERE id = %s", [e[4].id]), None),
    ],
    ids=["edit-details", "edit-event", "move-ciphertext", "delete-middle", "reorder-ids", "reorder-seq",
         "unseal-sealed", "delete-newest"],
)
def test_verify_names_the_tampered_event(capsys, tamper, named):
    """``named`` indexes the event the first problem names (the successor of a removed one)."""
    events = _seed()
    tamper(events)
    checked, problems, _ = audit_verify()
    expected = None if named is None else events[named].id
    assert problems and problems[0].event_id == expected, problems
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit", "verify")
    assert exit_info.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"][0]["event_id"] == expected


def test_events_are_append_only_through_the_orm():
    event = _seed(1)[0]
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_personal_data_is_encrypted_and_bound_to_its_event():
    first, second = _seed(2)
    assert b"192.0.2" not in bytes(first.personal)
    assert personal_data(AuditEvent.objects.get(pk=first.pk)) == {"ip": "192.0.2.0"}
    moved = AuditEvent.objects.get(pk=second.pk)
    moved.personal = first.personal
    with pytest.raises(Exception):  # noqa: B017 - any decryption failure is the point
        personal_data(moved)


def test_security_events_are_recorded_by_the_flows(client, web_client, service_client, user):
    from tests.factories import make_client

    key_owner, _ = make_client(name="customer")
    app, secret = web_client
    svc, svc_secret = service_client
    client_credentials(client, svc, svc_secret)
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, app, challenge=challenge))
    tokens = exchange_code(client, app, secret, code, verifier).json()
    exchange_code(client, app, secret, code, verifier)  # replay
    refresh(client, app, secret, tokens["refresh_token"])  # family already revoked by the replay
    client_secret_rotate(client=svc, grace=timedelta(hours=1), actor="cli")
    key, _ = api_key_create(client=key_owner, name="k", actor="cli")
    api_key_revoke(key=key, actor="cli")
    events = _events()
    for expected in (
        "client.created",
        "token.issued",
        "consent.granted",
        "code.replayed",
        "token.refresh_reuse",
        "client.secret_rotated",
        "api_key.created",
        "api_key.revoked",
    ):
        assert expected in events, (expected, events)
    audit_seal()
    assert audit_verify()[1] == []


def test_login_success_and_failure_are_audited(client, user):
    from tests.factories import PASSWORD

    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    failure = AuditEvent.objects.get(event="login.failure")
    success = AuditEvent.objects.get(event="login.success")
    assert "alice" not in json.dumps(failure.details) and b"alice" not in bytes(failure.personal)
    assert personal_data(failure)["username"] == "alice"
    assert success.subject == f"user:{user.pk}"


def test_key_rotation_reencrypts_personal_data_without_breaking_the_chain():
    from authserver.crypto import rotation

    events = _seed(3)
    before = [bytes(AuditEvent.objects.get(pk=e.pk).personal) for e in events]
    job = rotation.rotate()
    counts = rotation.run(str(job.pk))
    assert counts["audit_events_reencrypted"] == 3
    after = [bytes(AuditEvent.objects.get(pk=e.pk).personal) for e in events]
    assert all(a != b for a, b in zip(after, before, strict=True))
    assert personal_data(AuditEvent.objects.get(pk=events[1].pk)) == {"ip": "192.0.2.1"}
    assert audit_verify()[1] == []
