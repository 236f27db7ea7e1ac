"""Per-client discovery capability URLs (issue 15, C3; clients.discovery): shown once, stored as a
digest, rotatable and revocable, audited; anything but a live one is the uniform 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from authserver import credentials, notfound
from authserver.audit.models import AuditEvent
from clients.discovery.models import DiscoveryCapability
from clients.discovery.services import discovery_capability_revoke, discovery_capability_rotate
from tests.cli.helpers import run
from tests.helpers import client_credentials

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return url[url.index("/d/"):]


def _events(client_obj: Any) -> list[str]:
    return list(AuditEvent.objects.filter(subject=f"client:{client_obj.client_id}", event__startswith="client.discovery")
                .order_by("pk").values_list("event", flat=True))


def test_a_live_capability_answers_the_metadata_and_is_stored_as_a_digest(client, service_client, settings):
    svc, _ = service_client
    row, value = discovery_capability_rotate(client=svc, actor="test")
    assert credentials.is_well_formed(value, "dc") and row.digest == credentials.digest(value)
    assert not DiscoveryCapability.objects.filter(digest=value).exists() and value not in str(row)
    answer = client.get(f"/d/{value}")
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert answer.json()["token_endpoint"] == f"{settings.ISSUER}/oauth/token"
    assert client.head(f"/d/{value}").status_code == 200
    refused = client.post(f"/d/{value}")
    assert refused.status_code == 405 and refused["Allow"] == "GET, HEAD"


def test_rotation_stops_the_old_url_at_once_and_revocation_ends_it(client, service_client):
    svc, _ = service_client
    _, old = discovery_capability_rotate(client=svc, actor="test")
    _, new = discovery_capability_rotate(client=svc, actor="test")
    assert client.get(f"/d/{old}").content == notfound.BODY
    assert client.get(f"/d/{new}").status_code == 200
    assert discovery_capability_revoke(client=svc, actor="test") == 1
    assert client.get(f"/d/{new}").content == notfound.BODY
    assert discovery_capability_revoke(client=svc, actor="test") == 0  # idempotent
    assert _events(svc) == ["client.discovery_url_rotated", "client.discovery_url_rotated",
                            "client.discovery_url_revoked", "client.discovery_url_revoked"]


@pytest.mark.parametrize("bad", ["", "x", "dc_", "at_" + "A" * 49, "dc_" + "A" * 49, "dc_" + "A" * 48 + "\x00",
                                 "../admin", "%2e%2e"])
def test_malformed_capabilities_are_the_uniform_404_without_a_query(client, bad, django_assert_num_queries):
    with django_assert_num_queries(0):
        answer = client.get("/d/" + bad)
    assert answer.status_code == 404 and answer.content == notfound.BODY


def test_a_deleted_client_takes_its_capability_along(client, service_client):
    svc, _ = service_client
    _, value = discovery_capability_rotate(client=svc, actor="test")
    svc.delete()
    assert client.get(f"/d/{value}").content == notfound.BODY


def test_cli_create_shows_the_url_once_for_confidential_clients_and_resource_servers(capsys, client):
    confidential = run(capsys, "client", "create", "--name", "svc", "--type", "confidential",
                       "--grant", "client_credentials")
    rs = run(capsys, "client", "create", "--name", "api", "--type", "confidential",
             "--resource-server", "https://api.discovery.test")
    public = run(capsys, "client", "create", "--name", "spa", "--type", "public", "--grant", "authorization_code",
                 "--redirect-uri", "https://app.example.test/cb")
    assert "discovery_url" in confidential and "discovery_url" in rs and "discovery_url" not in public
    assert client.get(_path(confidential["discovery_url"])).status_code == 200
    shown = run(capsys, "client", "show", confidential["client_id"])
    assert confidential["discovery_url"].rpartition("/")[2] not in str(shown)  # shown once


def test_cli_rotate_and_revoke(capsys, client, web_client):
    app, _ = web_client
    first = run(capsys, "client", "discovery-url", "rotate", app.client_id)
    assert set(first) == {"client_id", "discovery_url", "hint"}
    second = run(capsys, "client", "discovery-url", "rotate", app.client_id)
    assert client.get(_path(first["discovery_url"])).content == notfound.BODY
    assert client.get(_path(second["discovery_url"])).status_code == 200
    assert run(capsys, "client", "discovery-url", "revoke", app.client_id) == {"client_id": app.client_id,
                                                                                "revoked": 1}
    assert client.get(_path(second["discovery_url"])).content == notfound.BODY
    assert _events(app) == ["client.discovery_url_rotated", "client.discovery_url_rotated",
                            "client.discovery_url_revoked"]


def test_cli_refuses_an_unknown_client(capsys):
    with pytest.raises(SystemExit):
        call_command("client", "discovery-url", "rotate", "no-such-client")
    assert "no such client" in capsys.readouterr().err


def test_the_capability_is_no_credential_anywhere_else(client, service_client):
    svc, secret = service_client
    _, value = discovery_capability_rotate(client=svc, actor="test")
    answer = client_credentials(client, svc, value)  # a discovery URL is not a client secret
    assert answer.status_code == 401
