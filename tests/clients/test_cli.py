"""The JSON command-line interface: one object on stdout, errors on stderr with a non-zero exit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from authserver import credentials
from authserver.cli import parse_duration
from clients.models import Client, RetiredClientSecret, Scope
from tests.helpers import client_credentials

pytestmark = pytest.mark.django_db


def run(capsys, *args: str) -> dict:
    call_command(*args)
    out = capsys.readouterr().out
    assert out.count("\n") <= 1, "exactly one JSON object"
    return json.loads(out)


def fail(capsys, *args: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as exit_info:
        call_command(*args)
    captured = capsys.readouterr()
    assert captured.out == ""
    return exit_info.value.code, json.loads(captured.err.strip().splitlines()[-1])


def test_scope_create_is_idempotent(capsys):
    assert run(capsys, "scope", "create", "ai.infer", "--description", "Inference") == {
        "name": "ai.infer", "description": "Inference", "created": True}
    assert run(capsys, "scope", "create", "ai.infer")["created"] is False
    assert Scope.objects.get(name="ai.infer").description == "Inference"


@pytest.mark.parametrize(
    ("name", "message"),
    [("has space", "scope names"), ('quote"', "scope names"), ("back\\slash", "scope names"),
     ("", "blank"), ("x" * 65, "at most 64")],
)
def test_scope_create_rejects_bad_names(capsys, name, message):
    code, err = fail(capsys, "scope", "create", name)
    assert code == 1 and message in err["error"]
    assert not Scope.objects.filter(name=name).exists()


def test_client_create_confidential_prints_secret_once_and_stores_digest(capsys, client):
    run(capsys, "scope", "create", "ai.infer")
    run(capsys, "client", "create", "--name", "api", "--type", "confidential", "--resource-server",
        "https://api.example.test")
    out = run(capsys, "client", "create", "--name", "svc", "--type", "confidential", "--grant", "client_credentials",
              "--scope", "ai.infer", "--audience", "https://api.example.test")
    assert credentials.is_well_formed(out["client_secret"], "cs")
    stored = Client.objects.get(client_id=out["client_id"])
    assert stored.client_secret == "authserver_sha256$" + credentials.digest(out["client_secret"])
    assert stored.client_secret_hint == credentials.hint(out["client_secret"])
    assert client_credentials(client, stored, out["client_secret"]).status_code == 200


def test_client_create_public_has_no_secret(capsys):
    out = run(capsys, "client", "create", "--name", "cli app", "--type", "public", "--grant", "authorization_code",
              "--redirect-uri", "http://127.0.0.1/callback")
    assert "client_secret" not in out
    assert Client.objects.get(client_id=out["client_id"]).client_secret == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grant", "authorization_code", "--redirect-uri", "http://evil.example/cb"], "127.0.0.1"),
        (["--grant", "authorization_code"], "redirect URI"),
        (["--grant", "client_credentials", "--scope", "nope"], "unknown scope"),
        (["--grant", "client_credentials", "--audience", "not a uri"], "audience"),
    ],
    ids=["http-redirect", "no-redirect", "unknown-scope", "bad-audience"],
)
def test_client_create_refuses_bad_registrations(capsys, args, message):
    code, err = fail(capsys, "client", "create", "--name", "x", "--type", "confidential", *args)
    assert code == 1 and message in err["error"]
    assert not Client.objects.exists()


def test_rotate_secret_keeps_old_secret_during_grace(capsys, client, service_client):
    app, old = service_client
    out = run(capsys, "client", "rotate-secret", app.client_id, "--grace", "1h")
    new = out["client_secret"]
    assert new != old and credentials.is_well_formed(new, "cs")
    app.refresh_from_db()
    assert client_credentials(client, app, old).status_code == 200
    assert client_credentials(client, app, new).status_code == 200
    RetiredClientSecret.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert client_credentials(client, app, old).status_code == 401
    assert client_credentials(client, app, new).status_code == 200


def test_rotate_secret_without_grace_kills_old_secret(capsys, client, service_client):
    app, old = service_client
    run(capsys, "client", "rotate-secret", app.client_id, "--grace", "0s")
    assert client_credentials(client, app, old).status_code == 401


def test_revoke_tokens_counts_and_kills_them(capsys, client, service_client, resource_server):
    from tests.helpers import introspect

    app, secret = service_client
    rs, rs_secret = resource_server
    tokens = [client_credentials(client, app, secret).json()["access_token"] for _ in range(3)]
    out = run(capsys, "client", "revoke-tokens", app.client_id)
    assert out["revoked"] == 3 and out["access_tokens"] == 3
    assert all(introspect(client, rs, rs_secret, t).json() == {"active": False} for t in tokens)


@pytest.mark.parametrize("command", [["client", "rotate-secret", "nope"], ["client", "revoke-tokens", "nope"]])
def test_unknown_client_is_an_error(capsys, command):
    code, err = fail(capsys, *command)
    assert code == 1 and err == {"error": "no such client"}


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "1w", "-1h", "1.5h", "h", "10 h"])
def test_parse_duration_rejects(text):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        parse_duration(text)
