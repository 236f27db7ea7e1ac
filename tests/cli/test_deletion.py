"""Deleting from the command line is safe and audited: a client takes every key, token and code
with it, a scope still held is refused unless --force, an API key is revoked before it goes; each
is one audit event, and introspection refuses the credentials at once (cached answers included)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from oauth2_provider.models import get_access_token_model

from authserver.audit.models import AuditEvent
from clients.models import Client, Scope
from keys.models import ApiKey
from tests.cli.helpers import fail, run
from tests.factories import make_client
from tests.helpers import client_credentials, introspect

pytestmark = pytest.mark.django_db


def _mark() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _events(mark: int) -> list[tuple[str, str, str]]:
    return [(e.event, e.actor, e.subject) for e in AuditEvent.objects.filter(id__gt=mark).order_by("id")]


@pytest.fixture
def holder(capsys: Any, resource_server: Any) -> dict[str, Any]:
    """A client with a live access token and a live API key, both introspected once (cached)."""
    client, secret = make_client(name="holder", scopes=["ai.infer"])
    http = HttpClient()
    token = client_credentials(http, client, secret, scope="ai.infer").json()["access_token"]
    key = run(capsys, "apikey", "create", "--client", client.client_id, "--name", "k", "--scope", "ai.infer")
    rs, rs_secret = resource_server
    active = {"token": token, "key": key["key"], "key_id": key["id"], "client": client, "http": http, "rs": rs,
              "rs_secret": rs_secret}
    for credential in (token, key["key"]):
        assert _active(active, credential)
    return active


def _active(holder: dict[str, Any], credential: str) -> bool:
    answer = introspect(holder["http"], holder["rs"], holder["rs_secret"], credential)
    assert answer.status_code == 200
    return bool(answer.json()["active"])


def test_client_delete_revokes_everything_first_in_one_event(capsys, holder):
    client = holder["client"]
    mark = _mark()
    out = run(capsys, "client", "delete", client.client_id)
    assert out == {"client_id": client.client_id, "deleted": True,
                   "revoked": {"api_keys": 1, "access_tokens": 1, "refresh_tokens": 0, "authorization_codes": 0}}
    assert _events(mark) == [("client.deleted", "cli", f"client:{client.client_id}")]
    details = AuditEvent.objects.get(id__gt=mark).details
    assert details["name"] == "holder" and details["api_keys"] == 1 and details["secret_hint"]
    assert not Client.objects.filter(pk=client.pk).exists() and not ApiKey.objects.exists()
    assert not get_access_token_model().objects.filter(application_id=client.pk).exists()
    assert not _active(holder, holder["token"]) and not _active(holder, holder["key"])  # at once, cache or not
    assert fail(capsys, "client", "show", client.client_id) == (1, {"error": "no such client"})


@pytest.mark.parametrize("before", ["active", "suspend", "revoke"])
def test_apikey_delete_revokes_it_at_once_and_writes_one_event(capsys, holder, before):
    if before != "active":
        run(capsys, "apikey", before, holder["key_id"])
    mark = _mark()
    out = run(capsys, "apikey", "delete", holder["key_id"])
    status = {"active": "active", "suspend": "suspended", "revoke": "revoked"}[before]
    assert out["deleted"] is True and out["status_before"] == status and out["hint"].startswith("ak_")
    assert _events(mark) == [("api_key.deleted", "cli", f"key:{holder['key_id']}")]
    assert not ApiKey.objects.filter(pk=holder["key_id"]).exists()
    assert not _active(holder, holder["key"])
    assert _active(holder, holder["token"])  # the client's other credentials are untouched
    assert fail(capsys, "apikey", "show", holder["key_id"]) == (1, {"error": "no such key"})


def test_scope_delete_is_refused_while_held_and_writes_nothing(capsys, holder):
    mark = _mark()
    code, err = fail(capsys, "scope", "delete", "ai.infer")
    assert code == 1 and err["error"].startswith("scope in use")
    assert err["held_by"] == {"clients": 1, "access_tokens": 1, "refresh_tokens": 0, "authorization_codes": 0,
                              "api_keys": 1}
    assert _events(mark) == [] and Scope.objects.filter(name="ai.infer").exists()
    assert _active(holder, holder["token"]) and _active(holder, holder["key"])


def test_scope_delete_force_ungrants_and_revokes_what_carries_it(capsys, holder):
    make_client(name="bystander", scopes=["ai.other"])
    mark = _mark()
    out = run(capsys, "scope", "delete", "ai.infer", "--force")
    assert out["revoked"] == {"clients_ungranted": 1, "access_tokens": 1, "refresh_tokens": 0,
                              "authorization_codes": 0, "api_keys": 1}
    assert _events(mark) == [("scope.deleted", "cli", "scope:ai.infer")]
    assert AuditEvent.objects.get(id__gt=mark).details["forced"] is True
    assert not Scope.objects.filter(name="ai.infer").exists() and Scope.objects.filter(name="ai.other").exists()
    assert not holder["client"].allowed_scopes.exists()
    assert not _active(holder, holder["token"]) and not _active(holder, holder["key"])
    assert ApiKey.objects.get(pk=holder["key_id"]).status == "revoked"


def test_scope_delete_of_an_unused_scope_needs_no_force(capsys):
    run(capsys, "scope", "create", "ai.unused")
    mark = _mark()
    assert run(capsys, "scope", "delete", "ai.unused")["deleted"] is True
    assert _events(mark) == [("scope.deleted", "cli", "scope:ai.unused")]


def test_a_scope_named_inside_another_is_not_held_by_it(capsys):
    """``ai`` is not held by a client allowed ``ai.infer`` (scope strings are matched word by word)."""
    make_client(name="other", scopes=["ai.infer"])
    run(capsys, "scope", "create", "ai")
    assert run(capsys, "scope", "show", "ai")["held_by"] == {"clients": 0, "access_tokens": 0, "refresh_tokens": 0,
                                                              "authorization_codes": 0, "api_keys": 0}
