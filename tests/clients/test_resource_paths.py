"""A resource server's rotating-path settings and key (clients.resource_paths, its services)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from authserver.audit.models import AuditEvent
from clients.resource_paths.models import ResourceServerPaths, public_url_refusal
from clients.resource_paths.services import path_key_rotate, resource_paths_update
from clients.services import ClientError

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://chat.example.test/v1"


@pytest.mark.parametrize("url", [
    "http://chat.example.test/v1",  # http only on loopback
    "ftp://chat.example.test/",
    "https://chat.example.test/v1?x=1",
    "https://chat.example.test/v1?",
    "https://chat.example.test/v1#frag",
    "https://user:pw@chat.example.test/",
    "https:///v1",
    "chat.example.test/v1",
    "https://chat.example.test/a b",
    "https://chat.example.test:99999/",
    "https://chat.example.test/\x00",
    "https://chat.example.test/" + "a" * 500,
])
def test_bad_public_urls_are_refused(resource_server, url):
    rs, _ = resource_server
    assert public_url_refusal(url) is not None
    with pytest.raises(ValidationError):
        resource_paths_update(client=rs, public_url=url, actor="test")
    assert not AuditEvent.objects.filter(event="resource_server.paths_updated").exists()


@pytest.mark.parametrize("url", ["https://chat.example.test", "https://chat.example.test/v1/", "http://127.0.0.1:8080",
                                 "http://localhost/api", "http://[::1]:9000/"])
def test_good_public_urls(url):
    assert public_url_refusal(url) is None


@pytest.mark.parametrize(("changes", "error"), [
    pytest.param({"rotating_paths": True}, ValidationError, id="rotating-without-public-url"),
    pytest.param({"window_seconds": 0}, ClientError, id="window-zero"),
    pytest.param({"window_seconds": -5}, ClientError, id="window-negative"),
])
def test_bad_settings_are_refused(resource_server, changes, error):
    rs, _ = resource_server
    with pytest.raises(error):
        resource_paths_update(client=rs, actor="test", **changes)
    assert not AuditEvent.objects.filter(event="resource_server.paths_updated").exists()


def test_only_a_resource_server_has_rotating_paths(service_client):
    app, _ = service_client
    with pytest.raises(ClientError):
        resource_paths_update(client=app, rotating_paths=False, actor="test")
    with pytest.raises(ClientError):
        path_key_rotate(client=app, actor="test")
    assert not ResourceServerPaths.objects.exists()


def test_an_update_is_audited_with_what_changed_never_the_key(resource_server):
    rs, _ = resource_server
    row = resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, window_seconds=60,
                                actor="test")
    event = AuditEvent.objects.get(event="resource_server.paths_updated")
    assert event.subject == f"client:{rs.client_id}" and event.actor == "test"
    assert event.details == {"changed": {"rotating_paths": True, "public_url": PUBLIC_URL, "window_seconds": 60}}
    assert row.path_key not in str(event.details)
    resource_paths_update(client=rs, rotating_paths=True, actor="test")  # nothing changes: no event
    assert AuditEvent.objects.filter(event="resource_server.paths_updated").count() == 1
    resource_paths_update(client=rs, window_seconds=None, actor="test")  # back to the server default
    assert ResourceServerPaths.objects.get(client=rs).effective_window_seconds == 86400


def test_turning_rotation_off_keeps_the_url(resource_server):
    rs, _ = resource_server
    resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, actor="test")
    row = resource_paths_update(client=rs, rotating_paths=False, actor="test")
    assert row.public_url == PUBLIC_URL and row.rotating_paths is False


def test_rotation_changes_the_key_and_its_version(resource_server):
    rs, _ = resource_server
    first = resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, actor="test")
    rotated = path_key_rotate(client=rs, actor="test")
    assert rotated.path_key != first.path_key and rotated.key_version == 2 and rotated.key_rotated is not None
    event = AuditEvent.objects.get(event="resource_server.path_key_rotated")
    assert event.details == {"key_version": 2} and event.subject == f"client:{rs.client_id}"


def test_the_key_is_encrypted_at_rest(resource_server: Any):
    rs, _ = resource_server
    row = resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, actor="test")
    with connection.cursor() as cursor:
        cursor.execute("SELECT path_key FROM clients_resourceserverpaths WHERE client_id = %s", [rs.pk])
        stored = cursor.fetchone()[0]
    assert row.path_key not in str(stored)
    assert ResourceServerPaths.objects.get(pk=row.pk).path_key == row.path_key
    assert row.path_key not in str(row) and row.path_key not in repr(row)
