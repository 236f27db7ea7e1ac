"""Registering a client for the device grant (RFC 8628): CLI short form, admin choice, model rules."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from clients.forms import ClientCreationForm
from clients.models import GRANT_DEVICE_CODE, Client
from tests.factories import ScopeFactory

pytestmark = pytest.mark.django_db


def test_cli_takes_device_code_as_the_short_form(capsys):
    ScopeFactory(name="ai.infer")
    call_command("client", "create", "--name", "Terminal agent", "--type", "public", "--grant", "device_code",
                 "--scope", "ai.infer")
    created = json.loads(capsys.readouterr().out)
    client = Client.objects.get(client_id=created["client_id"])
    assert client.grant_types == [GRANT_DEVICE_CODE]
    assert client.authorization_grant_type == GRANT_DEVICE_CODE
    assert client.redirect_uris == "" and client.allows_grant_type(GRANT_DEVICE_CODE)
    assert not client.allows_grant_type("authorization_code")


def test_cli_refuses_an_unknown_grant_name(capsys):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("client", "create", "--name", "x", "--type", "public", "--grant", "device")
    assert not Client.objects.exists()


def test_admin_offers_the_device_grant_and_needs_no_redirect_uri():
    form = ClientCreationForm(data={"name": "Build robot", "client_type": "public", "grant_types": [GRANT_DEVICE_CODE]})
    assert form.is_valid(), form.errors
    assert GRANT_DEVICE_CODE in dict(form.fields["grant_types"].choices)


def test_a_device_client_may_refresh_but_not_use_other_grants(capsys):
    call_command("client", "create", "--name", "robot", "--type", "confidential", "--grant", "device_code")
    client = Client.objects.get(client_id=json.loads(capsys.readouterr().out)["client_id"])
    assert client.allows_grant_type(client.GRANT_DEVICE_CODE)  # DOT maps refresh_token to it as well
    assert not client.allows_grant_type("client_credentials")
