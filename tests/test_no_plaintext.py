"""No credential is ever stored or logged in plaintext (docs/decisions/0002-hash-only-at-rest.md).

Runs last. It issues one of every credential kind itself (so the dump below certainly holds
rows derived from them), then checks a full dump of the database and every log record captured
during the whole session against *every* credential minted in the session.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.db import connection

from authserver import credentials
from authserver.staff.services import totp_device_pending
from clients.discovery.services import discovery_capability_rotate
from clients.registration.services import initial_access_token_create
from clients.resource_paths.models import key_bytes
from clients.resource_paths.services import path_key_rotate, resource_paths_update
from clients.services import client_secret_rotate
from clients.webhooks.services import client_contact_set, webhook_secret_rotate, webhook_send
from tests.conftest import ISSUED, TOTP_SEEDS, USER_CODES, basic_auth
from tests.factories import UserFactory, make_client
from tests.helpers import authorize, client_credentials, code_from, exchange_code, introspect, pkce_pair, refresh
from tests.leakcheck import SESSION_LOG
from tests.oauth.device import flow as device_flow
from tests.webhooks.receiver import deliver_due, receiver


def _dump_database() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to dump the PostgreSQL test database"
    env = {"PGPASSWORD": settings["PASSWORD"] or ""}
    result = subprocess.run(
        [pg_dump, "--no-owner", "-h", settings["HOST"] or "localhost", "-p", str(settings["PORT"] or 5432),
         "-U", settings["USER"], settings["NAME"]],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )
    return result.stdout


def _seed_forms(seed: str) -> set[str]:
    """A TOTP seed as hex (how django-otp stored it) and as the base32 an authenticator app is shown."""
    return {seed.lower(), seed.upper(), base64.b32encode(bytes.fromhex(seed)).decode().rstrip("=")}


def _user_code_forms(code: str) -> set[str]:
    """A user code as shown (XXXX-XXXX) and as stored if someone forgot the digest (XXXXXXXX)."""
    return {code, code.replace("-", "")}


_PATH_KEY = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes as unpadded base64url (clients.resource_paths)


def _path_key_forms(key: str) -> set[str]:
    """A path key as sent (base64url), as standard base64 and as hex (what a careless log would print)."""
    raw = key_bytes(key)
    return {key, base64.b64encode(raw).decode().rstrip("="), raw.hex()}


def _well_formed_credentials_in(text: str) -> list[str]:
    """Hints of every string in ``text`` that is a whole credential of ours, checksum included.

    The redaction pattern is deliberately loose (it over-masks); here a random 49-character run
    after an underscore (a session key, a client id) must not count, so each candidate's checksum
    is verified, for every prefix length the match allows.
    """
    found = []
    for match in credentials.CREDENTIAL_PATTERN.finditer(text):
        prefix, body = match.group(1), match.group(0)[len(match.group(1)) + 1:]
        for start in range(len(prefix)):
            candidate = f"{prefix[start:]}_{body}"
            if credentials.is_well_formed(candidate):
                found.append(credentials.hint(candidate))
                break
    return found


@pytest.mark.leakcheck
@pytest.mark.django_db(transaction=True)
def test_no_credential_in_database_dump_or_session_logs(client, web_client, service_client, resource_server, user,
                                                        settings):
    app, secret = web_client
    svc, svc_secret = service_client
    rs, rs_secret = resource_server
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, app, challenge=challenge))
    tokens = exchange_code(client, app, secret, code, verifier).json()
    rotated = refresh(client, app, secret, tokens["refresh_token"]).json()
    cc = client_credentials(client, svc, svc_secret).json()["access_token"]
    assert introspect(client, rs, rs_secret, cc).json()["active"] is True
    _, new_secret = client_secret_rotate(client=svc, grace=timedelta(hours=1))
    assert client_credentials(client, svc, svc_secret).status_code == 200  # old secret, inside grace
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    with receiver() as hooks:  # a webhook secret, rotated, and a signed delivery
        _, whsec = client_contact_set(client=svc, webhook_url=hooks.url, actor="test")
        _, whsec2 = webhook_secret_rotate(client=svc, actor="test")
        webhook_send(client=svc, event_type="t", data={})
        assert [d.status for d in deliver_due()] == ["delivered"]
    _, dc = discovery_capability_rotate(client=svc, actor="test")  # a discovery URL, used, then rotated away
    assert client.get("/d/" + dc).status_code == 200
    _, dc2 = discovery_capability_rotate(client=svc, actor="test")
    assert client.get("/d/" + dc).status_code == 404  # the uniform 404, and no "Not Found: <path>" log line
    resource_paths_update(client=rs, rotating_paths=True, public_url="https://chat.example.test", actor="test")
    fetched = client.post("/oauth/path-key", HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret)).json()["key"]
    path_key = path_key_rotate(client=rs, actor="test").path_key  # a resource server's path key (encrypted at rest)
    # RFC 8628: a device code and a user code, approved (the page pre-filled from the URL), redeemed.
    device_app, _ = make_client(name="device", client_type="public", grant_types=["device_code"])
    started = device_flow.start(client, device_app).json()
    assert client.get(f"/accounts/device?user_code={started['user_code']}").status_code == 200
    assert device_flow.approve(client, started["user_code"]).status_code == 200
    device_tokens = device_flow.poll(client, device_app, started["device_code"]).json()
    staff = UserFactory(is_staff=True)
    seed = totp_device_pending(user=staff).key  # a staff member's authenticator seed (encrypted at rest)
    # Dynamic registration (RFC 7591/7592): an initial access token, a registration access token, rotated by an update.
    settings.DCR, settings.REGISTRABLE_SCOPES = "token", ["ai.infer"]
    _, iat = initial_access_token_create(actor="test")
    registered = client.post("/oauth/register", {"redirect_uris": ["http://127.0.0.1/cb"]},
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {iat}").json()
    rat = registered["registration_access_token"]
    rat2 = client.put(f"/oauth/register/{registered['client_id']}", {"client_id": registered["client_id"],
                      "redirect_uris": ["http://127.0.0.1/cb"]}, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {rat}").json()["registration_access_token"]
    here = [secret, svc_secret, rs_secret, code, tokens["access_token"], tokens["refresh_token"],
            rotated["access_token"], rotated["refresh_token"], cc, new_secret, whsec, whsec2, fetched, path_key, dc, dc2,
            started["device_code"], device_tokens["access_token"],
            iat, rat, rat2]

    dump = _dump_database()
    # The dump really holds this test's rows: the digests are there...
    assert credentials.digest(rotated["access_token"]) in dump
    assert credentials.digest(code) in dump
    assert credentials.digest(dc) in dump
    assert credentials.digest(started["device_code"]) in dump
    assert credentials.digest(iat) in dump and credentials.digest(rat2) in dump
    # ...and no credential, from this test or any other test of the session, is.
    assert all(value in ISSUED for value in here)
    leaked_in_dump = [credentials.hint(v) for v in ISSUED if v in dump]
    assert leaked_in_dump == []
    webhook_secrets = [v for v in ISSUED if v.startswith("whsec_")]
    assert [credentials.hint(v) for v in webhook_secrets if v.removeprefix("whsec_").rstrip("=") in dump] == []
    path_keys = [v for v in ISSUED if _PATH_KEY.fullmatch(v)]
    assert fetched in path_keys and path_key in path_keys
    assert [k[:4] for k in path_keys if any(form in dump for form in _path_key_forms(k))] == []
    assert _well_formed_credentials_in(dump) == []
    assert seed in TOTP_SEEDS
    assert [s[:6] for s in TOTP_SEEDS if any(form in dump for form in _seed_forms(s))] == []
    assert started["user_code"] in USER_CODES
    assert [c[:2] for c in USER_CODES if any(form in dump for form in _user_code_forms(c))] == []

    logs = "\n".join(SESSION_LOG)
    assert len(SESSION_LOG) > 0
    leaked_in_logs = [credentials.hint(v) for v in ISSUED if v in logs]
    assert leaked_in_logs == []
    assert [credentials.hint(v) for v in webhook_secrets if v.removeprefix("whsec_").rstrip("=") in logs] == []
    assert [k[:4] for k in path_keys if any(form in logs for form in _path_key_forms(k))] == []
    assert _well_formed_credentials_in(logs) == []
    assert [s[:6] for s in TOTP_SEEDS if any(form in logs for form in _seed_forms(s))] == []
    assert [c[:2] for c in USER_CODES if any(form in logs for form in _user_code_forms(c))] == []
