"""Creating a scope is an audited change; finding it already there is neither."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from authserver.audit.models import AuditEvent
from clients.services import scope_create

pytestmark = pytest.mark.django_db


def test_scope_create_writes_one_event_per_creation(capsys):
    call_command("scope", "create", "ai.infer", "--description", "Inference")
    assert json.loads(capsys.readouterr().out)["created"] is True
    [event] = AuditEvent.objects.filter(event="scope.created")
    assert event.actor == "cli" and event.subject == "scope:ai.infer"
    assert event.details == {"description": "Inference"}

    assert scope_create(name="ai.infer", actor="cli")[1] is False
    assert AuditEvent.objects.filter(event="scope.created").count() == 1


def test_invalid_scope_is_refused_without_an_event(capsys):
    with pytest.raises(SystemExit):
        call_command("scope", "create", "not a scope!")
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
    assert not AuditEvent.objects.filter(event="scope.created").exists()
