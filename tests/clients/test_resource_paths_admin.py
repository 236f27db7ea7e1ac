"""The admin: a resource server's rotating paths on its client page, and "Rotate path key" (with a
recent second factor and a confirmation). Django's test client, logged in with a second factor."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse

from authserver.audit.models import AuditEvent
from authserver.staff.factor import SESSION_AT
from clients.models import Client
from clients.resource_paths.models import ResourceServerPaths
from clients.resource_paths.services import resource_paths_update
from tests.factories import RS_AUDIENCE
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://chat.example.test/v1"


@pytest.fixture
def admin_http() -> HttpClient:
    http = HttpClient()
    staff_login(http, get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def change_data(client: Client, existing: ResourceServerPaths | None = None, **paths: str) -> dict[str, Any]:
    data = {"name": client.name, "grant_types": ["client_credentials"], "redirect_uris": "", "allowed_audiences": "",
            "is_resource_server": "on", "audience": RS_AUDIENCE, "webhook_url": "", "contact_email": "",
            "retired_secrets-TOTAL_FORMS": "0", "retired_secrets-INITIAL_FORMS": "0",
            "resource_paths-TOTAL_FORMS": "1", "resource_paths-INITIAL_FORMS": "1" if existing else "0",
            "resource_paths-MIN_NUM_FORMS": "0", "resource_paths-MAX_NUM_FORMS": "1",
            "resource_paths-0-id": str(existing.pk) if existing else "", "resource_paths-0-client": str(client.pk),
            "resource_paths-0-public_url": "", "resource_paths-0-window_seconds": ""}
    return {**data, **{f"resource_paths-0-{name}": value for name, value in paths.items()}}


def test_the_resource_server_page_edits_its_rotating_paths(admin_http, resource_server):
    rs, _ = resource_server
    page = admin_http.get(url("clients_client_change", rs.pk)).content.decode()
    assert "Rotating paths" in page and "Rotate path key" in page
    response = admin_http.post(url("clients_client_change", rs.pk),
                               change_data(rs, rotating_paths="on", public_url=PUBLIC_URL, window_seconds="600"))
    assert response.status_code == 302
    row = ResourceServerPaths.objects.get(client=rs)
    assert (row.rotating_paths, row.public_url, row.window_seconds) == (True, PUBLIC_URL, 600)
    changed = AuditEvent.objects.filter(event="admin.changed", subject=f"clients.Client:{rs.pk}").last()
    assert changed is not None and row.path_key not in str(changed.details)
    page = admin_http.get(url("clients_client_change", rs.pk)).content.decode()
    assert row.path_key not in page  # the key is never shown, only its version


@pytest.mark.parametrize(("paths", "message"), [
    ({"rotating_paths": "on"}, "public URL"),
    ({"public_url": "http://chat.example.test/"}, "https"),
    ({"public_url": "https://chat.example.test/#x"}, "fragment"),
    ({"window_seconds": "0"}, "greater than or equal to 1"),
])
def test_bad_settings_are_refused_on_the_page(admin_http, resource_server, paths, message):
    rs, _ = resource_server
    response = admin_http.post(url("clients_client_change", rs.pk), change_data(rs, **paths))
    assert response.status_code == 200
    errors = str([f.errors for f in response.context["inline_admin_formsets"][-1].formset])
    errors += str(response.context["inline_admin_formsets"][-1].formset.non_form_errors())
    assert message in errors
    assert not ResourceServerPaths.objects.exists()


def test_other_clients_have_no_rotating_paths(admin_http, service_client):
    app, _ = service_client
    page = admin_http.get(url("clients_client_change", app.pk)).content.decode()
    assert "Rotating paths" not in page and "Rotate path key" not in page
    response = admin_http.post(url("clients_client_rotate_path_key", app.pk), {"confirm": "yes"})
    assert response.status_code == 302
    assert not ResourceServerPaths.objects.exists()


def test_rotate_path_key_asks_then_rotates(admin_http, resource_server):
    rs, _ = resource_server
    before = resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, actor="test")
    confirm = admin_http.get(url("clients_client_rotate_path_key", rs.pk))
    assert confirm.status_code == 200 and "Yes, rotate the path key" in confirm.content.decode()
    assert before.path_key not in confirm.content.decode()
    assert ResourceServerPaths.objects.get(client=rs).key_version == 1  # a GET changes nothing
    done = admin_http.post(url("clients_client_rotate_path_key", rs.pk), {"confirm": "yes"})
    assert done.status_code == 302 and done["Location"] == url("clients_client_change", rs.pk)
    after = ResourceServerPaths.objects.get(client=rs)
    assert after.key_version == 2 and after.path_key != before.path_key
    event = AuditEvent.objects.get(event="resource_server.path_key_rotated")
    assert event.actor.startswith("user:") and event.details == {"key_version": 2}


def test_rotate_path_key_needs_a_recent_second_factor(admin_http, resource_server):
    rs, _ = resource_server
    resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, actor="test")
    session = admin_http.session
    session[SESSION_AT] = 0  # the factor was passed long ago
    session.save()
    response = admin_http.post(url("clients_client_rotate_path_key", rs.pk), {"confirm": "yes"})
    assert response.status_code == 302 and "step_up=1" in response["Location"]
    assert ResourceServerPaths.objects.get(client=rs).key_version == 1
    assert not AuditEvent.objects.filter(event="resource_server.path_key_rotated").exists()
