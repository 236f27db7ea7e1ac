"""``manage.py client registration-token create|list|revoke``: the iat_ plaintext once, hints after."""

from __future__ import annotations

from typing import Any

import pytest

from authserver import credentials
from authserver.audit.models import AuditEvent
from clients.registration.models import InitialAccessToken
from tests.cli.helpers import fail, run
from tests.clients.registration.conftest import GOOD, post

pytestmark = pytest.mark.django_db


def test_create_prints_it_once_and_it_registers_in_token_mode(capsys: Any, client: Any, dcr: Any) -> None:
    created = run(capsys, "client", "registration-token", "create", "--expires-in", "3600", "--uses", "1")
    value = created["initial_access_token"]
    assert credentials.is_well_formed(value, "iat") and created["uses_allowed"] == 1 and created["usable"]
    stored = InitialAccessToken.objects.get(pk=created["id"])
    assert stored.digest == credentials.digest(value) and created["hint"] == credentials.hint(value)
    assert AuditEvent.objects.get(event="registration_token.created").details["uses_allowed"] == 1
    listed = run(capsys, "client", "registration-token", "list")["registration_tokens"]
    assert [t["hint"] for t in listed] == [created["hint"]] and value not in str(listed)
    dcr.DCR = "token"
    assert post(client, GOOD, token=value).status_code == 201
    assert run(capsys, "client", "registration-token", "list")["registration_tokens"][0]["usable"] is False


def test_revoke_stops_it_at_once(capsys: Any, client: Any, dcr: Any) -> None:
    created = run(capsys, "client", "registration-token", "create")
    assert created["expires_at"] is None and created["uses_allowed"] is None
    revoked = run(capsys, "client", "registration-token", "revoke", str(created["id"]))
    assert revoked["revoked_at"] and not revoked["usable"]
    assert AuditEvent.objects.filter(event="registration_token.revoked").count() == 1
    dcr.DCR = "token"
    assert post(client, GOOD, token=created["initial_access_token"]).status_code == 401


@pytest.mark.parametrize(("args", "message"), [
    (["create", "--expires-in", "0"], "--expires-in must be positive"),
    (["create", "--uses", "0"], "--uses must be at least 1"),
    (["revoke", "999"], "no such registration token"),
])
def test_refusals(capsys: Any, db: Any, args: list[str], message: str) -> None:
    code, error = fail(capsys, "client", "registration-token", *args)
    assert code == 1 and error["error"] == message and not InitialAccessToken.objects.exists()
