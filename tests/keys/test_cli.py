"""``manage.py apikey``: one JSON object on stdout; no plaintext except at creation and rotation."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from authserver import credentials
from keys.models import ApiKey, CompromiseResponse
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE

pytestmark = pytest.mark.django_db


def run(capsys, *args):
    call_command(*args)
    return json.loads(capsys.readouterr().out)


def fail(capsys, *args):
    with pytest.raises(SystemExit) as info:
        call_command(*args)
    captured = capsys.readouterr()
    return info.value.code, json.loads(captured.err.strip().splitlines()[-1])


def test_create_rotate_revoke_list(capsys, key_owner):
    created = run(capsys, "apikey", "create", "--client", key_owner.client_id, "--name", "prod", "--scope", "ai.infer",
                  "--audience", RS_AUDIENCE, "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32",
                  "--expires-in", "30d", "--rate-limit", "100/m", "--quota", "1000")
    assert credentials.is_well_formed(created["key"], "ak")
    assert created["allowed_ips"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert created["rate_limit"] == "100/60s" and created["quota"] == 1000
    assert api_key_verify(key=created["key"], audience=RS_AUDIENCE, client_ip="10.0.0.1")["active"] is True

    rotated = run(capsys, "apikey", "rotate", created["id"], "--grace", "1h")
    assert rotated["key"] != created["key"] and rotated["previous_id"] == created["id"]
    assert api_key_verify(key=created["key"], audience=RS_AUDIENCE, client_ip="10.0.0.1")["active"] is True

    revoked = run(capsys, "apikey", "revoke", rotated["id"])
    assert revoked["status"] == "revoked" and "key" not in revoked
    assert api_key_verify(key=rotated["key"], audience=RS_AUDIENCE, client_ip="10.0.0.1") == {"active": False}

    listing = run(capsys, "apikey", "list", "--client", key_owner.client_id)
    text = json.dumps(listing)
    assert len(listing["keys"]) == 2
    assert created["key"] not in text and rotated["key"] not in text
    assert credentials.CREDENTIAL_PATTERN.search(text) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "nope"], "not allowed"),
        (["--audience", "https://elsewhere.example"], "not allowed"),
        (["--allow-ip", "10.0.0.1/8"], "invalid CIDR"),
        (["--expires-in", "400d"], "at most"),
        (["--rate-limit", "fast"], "invalid rate limit"),
        (["--quota", "0"], "quota"),
    ],
)
def test_create_refuses_bad_policy(capsys, key_owner, args, message):
    code, err = fail(capsys, "apikey", "create", "--client", key_owner.client_id, "--name", "x", *args)
    assert code == 1 and message in err["error"]
    assert not ApiKey.objects.exists()


def test_unknown_key_and_client(capsys, key_owner):
    assert fail(capsys, "apikey", "revoke", "not-a-uuid") == (1, {"error": "no such key"})
    assert fail(capsys, "apikey", "revoke", "00000000-0000-0000-0000-000000000000") == (1, {"error": "no such key"})
    assert fail(capsys, "apikey", "create", "--client", "nope", "--name", "x") == (1, {"error": "no such client"})


def test_revoke_all_is_immediate(capsys, key_owner):
    created = run(capsys, "apikey", "create", "--client", key_owner.client_id, "--name", "prod")
    out = run(capsys, "apikey", "revoke-all", "--client", key_owner.client_id)
    assert CompromiseResponse.objects.filter(pk=out["response_id"]).exists()
    assert api_key_verify(key=created["key"], audience=RS_AUDIENCE, client_ip=None) == {"active": False}
