"""The command-line table (issue 14): list, show, delete, create and rotate for clients, scopes and
API keys. Each row checks the one JSON object on stdout (its keys, ISO 8601 timestamps, text as
is), that no secret or digest appears outside the shown-once create and rotate answers, and the
error shapes: unknown ids (exit 1, a generic message), usage errors, a dependency down."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import OperationalError

from authserver import credentials
from clients.models import Client
from keys.models import ApiKey
from tests.cli.helpers import fail, run
from tests.factories import RS_AUDIENCE

pytestmark = pytest.mark.django_db

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
CLIENT = {"client_id", "name", "client_type", "grant_types", "redirect_uris", "scopes", "audiences", "resource_server",
          "registration_source",
          "secret_hint", "secret_rotated", "credentials_revoked_at", "webhook_url", "contact_email", "created",
          "updated"}
SCOPE = {"name", "description", "created", "clients"}
KEY = {"id", "name", "hint", "client_id", "status", "scope", "audiences", "allowed_ips", "rate_limit", "quota",
       "expires", "grace_ends", "revoked", "suspended", "created", "created_by", "last_used", "last_used_ip", "uses"}
DESCRIPTION = "Inférence — 推論 …"


@pytest.fixture
def world(capsys: Any) -> dict[str, Any]:
    """A scope, a confidential client allowed it and an API key, made through the command line."""
    run(capsys, "scope", "create", "ai.infer", "--description", DESCRIPTION)
    rs = run(capsys, "client", "create", "--name", "Inference API", "--type", "confidential",
             "--resource-server", RS_AUDIENCE)  # registered first: an audience must name one
    client = run(capsys, "client", "create", "--name", "Büro svc", "--type", "confidential", "--grant",
                 "client_credentials", "--scope", "ai.infer", "--audience", RS_AUDIENCE)
    key = run(capsys, "apikey", "create", "--client", client["client_id"], "--name", "prod", "--scope", "ai.infer")
    stored = Client.objects.get(client_id=client["client_id"])
    return {"client_id": client["client_id"], "key_id": key["id"], "scope": "ai.infer", "rs_id": rs["client_id"],
            "secrets": [client["client_secret"], rs["client_secret"], key["key"], stored.client_secret,
                        ApiKey.objects.get(pk=key["id"]).digest]}


def _timestamps(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (_timestamps(v) if not isinstance(v, str) else
                                                       [v] if k in TIME_FIELDS and v else [])]
    if isinstance(value, list):
        return [t for item in value for t in _timestamps(item)]
    return []


TIME_FIELDS = {"created", "updated", "expires", "grace_ends", "revoked", "suspended", "last_used", "secret_rotated",
               "credentials_revoked_at", "previous_secret_valid_until", "previous_valid_until", "key_rotated"}

# (args with {placeholders}, the keys of the answer, the collection inside it (lists), the secret it prints once)
ROWS = [
    pytest.param(["client", "create", "--name", "Zweiter", "--type", "confidential", "--grant", "client_credentials"],
                 {"client_id", "client_secret", "name", "client_type", "grant_types", "redirect_uris", "scopes",
                  "audiences", "resource_server", "webhook_url", "contact_email", "discovery_url"}, None,
                 "client_secret", id="client-create"),
    pytest.param(["client", "discovery-url", "rotate", "{client_id}"], {"client_id", "discovery_url", "hint"}, None,
                 "discovery_url", id="client-discovery-url-rotate"),
    pytest.param(["client", "discovery-url", "revoke", "{client_id}"], {"client_id", "revoked"}, None, None,
                 id="client-discovery-url-revoke"),
    pytest.param(["client", "list"], {"clients"}, ("clients", CLIENT), None, id="client-list"),
    pytest.param(["client", "show", "{client_id}"], CLIENT | {"live"}, None, None, id="client-show"),
    pytest.param(["client", "rotate-secret", "{client_id}", "--grace", "1h"],
                 {"client_id", "client_secret", "previous_secret_valid_until"}, None, "client_secret",
                 id="client-rotate"),
    pytest.param(["client", "delete", "{client_id}"], {"client_id", "deleted", "revoked"}, None, None,
                 id="client-delete"),
    pytest.param(["client", "show", "{rs_id}"], CLIENT | {"live", "rotating_paths"}, None, None,
                 id="client-show-resource-server"),
    pytest.param(["client", "update", "{rs_id}", "--rotating-paths", "on", "--public-url", "https://api.example.test/v1",
                  "--per-client-aliases", "on", "--path-window", "3600"], {"client_id", "rotating_paths"}, None, None,
                 id="client-update-paths"),
    pytest.param(["client", "path-key", "rotate", "{rs_id}"], {"client_id", "key_version", "key_rotated"}, None, None,
                 id="client-path-key-rotate"),
    pytest.param(["scope", "create", "ai.embed"], {"name", "description", "created"}, None, None, id="scope-create"),
    pytest.param(["scope", "list"], {"scopes"}, ("scopes", SCOPE), None, id="scope-list"),
    pytest.param(["scope", "show", "{scope}"], SCOPE | {"client_ids", "held_by"}, None, None, id="scope-show"),
    pytest.param(["scope", "delete", "{scope}", "--force"], {"name", "deleted", "revoked"}, None, None,
                 id="scope-delete"),
    pytest.param(["apikey", "create", "--client", "{client_id}", "--name", "zwei"], KEY | {"key"}, None, "key",
                 id="apikey-create"),
    pytest.param(["apikey", "list"], {"keys"}, ("keys", KEY), None, id="apikey-list"),
    pytest.param(["apikey", "show", "{key_id}"], KEY, None, None, id="apikey-show"),
    pytest.param(["apikey", "rotate", "{key_id}", "--grace", "1h"], KEY | {"key", "previous_id",
                                                                         "previous_valid_until"}, None, "key",
                 id="apikey-rotate"),
    pytest.param(["apikey", "delete", "{key_id}"], {"id", "name", "hint", "client_id", "status_before", "deleted"},
                 None, None, id="apikey-delete"),
]


@pytest.mark.parametrize(("args", "fields", "collection", "secret"), ROWS)
def test_each_verb_answers_one_json_object(capsys, world, args, fields, collection, secret):
    out = run(capsys, *[arg.format(**world) for arg in args])
    assert set(out) == fields
    if collection:
        name, item_fields = collection
        assert out[name] and all(set(item) == item_fields for item in out[name])
    for stamp in _timestamps(out):
        assert ISO.match(stamp), stamp  # ISO 8601 with "T" and the offset, everywhere
    text = str(out)
    if secret:
        shown = out[secret].rpartition("/d/")[2] if secret == "discovery_url" else out[secret]
        assert credentials.is_well_formed(shown, {"client_secret": "cs", "discovery_url": "dc"}.get(secret, "ak"))
        text = text.replace(out[secret], "")
    for known in world["secrets"]:
        assert known not in text  # no plaintext, no digest, outside the shown-once answers
    assert "sha256" not in text and "digest" not in out


def test_text_is_printed_as_is(capsys, world):
    call_command("scope", "show", "ai.infer")
    out = capsys.readouterr().out
    assert DESCRIPTION in out and "\\u" not in out


UNKNOWN = [
    (["client", "show", "nope"], "no such client"),
    (["client", "delete", "nope"], "no such client"),
    (["client", "rotate-secret", "nope"], "no such client"),
    (["client", "revoke-tokens", "nope"], "no such client"),
    (["client", "update", "nope", "--rotating-paths", "off"], "no such client"),
    (["client", "path-key", "rotate", "nope"], "no such client"),
    (["scope", "show", "nope"], "no such scope"),
    (["scope", "delete", "nope"], "no such scope"),
    (["apikey", "show", "00000000-0000-0000-0000-000000000000"], "no such key"),
    (["apikey", "delete", "00000000-0000-0000-0000-000000000000"], "no such key"),
    (["apikey", "show", "not-a-uuid"], "no such key"),
    (["apikey", "rotate", "not-a-uuid"], "no such key"),
    (["apikey", "delete", "'; DROP TABLE keys_apikey; --"], "no such key"),
]


@pytest.mark.parametrize(("args", "message"), UNKNOWN, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in
                                                            enumerate(UNKNOWN)])
def test_unknown_ids_exit_1_with_a_generic_message(capsys, world, args, message):
    assert fail(capsys, *args) == (1, {"error": message})


USAGE = [
    (["client"], "required: ACTION"),
    (["client", "frobnicate"], "invalid choice"),
    (["client", "show"], "client_id"),
    (["scope", "delete"], "name"),
    (["apikey", "show"], "key_id"),
    (["apikey", "create", "--client", "x"], "--name"),
    (["client", "create", "--name", "x", "--type", "secret", "--grant", "client_credentials"], "invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_in_process_are_command_errors(args, message):
    """Under call_command a usage error is Django's CommandError (the real process: exit 2, test_process)."""
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(*args)


DOWN = [
    pytest.param(redis.ConnectionError("Error 111 connecting to 10.1.2.3:6379."), "redis (the counter store) is "
                 "unavailable", id="redis-down"),
    pytest.param(OperationalError("attempt to write a readonly database"), "the database is read-only",
                 id="database-read-only"),
    pytest.param(OperationalError("could not connect to server db.internal"), "the database is unavailable",
                 id="database-down"),
]
TARGETS = [
    ("keys.management.commands.client.client_delete", ["client", "delete", "{client_id}"]),
    ("keys.management.commands.scope.scope_delete", ["scope", "delete", "{scope}"]),
    ("keys.management.commands.apikey.api_key_delete", ["apikey", "delete", "{key_id}"]),
    ("clients.selectors.clients_list", ["client", "list"]),
    ("clients.selectors.scope_get", ["scope", "show", "{scope}"]),
]


@pytest.mark.parametrize(("error", "detail"), DOWN)
@pytest.mark.parametrize(("target", "args"), TARGETS, ids=[t.rsplit(".", 1)[1] for t, _ in TARGETS])
def test_a_dependency_down_is_the_unavailable_line(monkeypatch, capsys, world, error, detail, target, args):
    def down(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(target, down)
    code, err = fail(capsys, *[arg.format(**world) for arg in args])
    assert (code, err) == (1, {"error": "unavailable", "detail": detail})
