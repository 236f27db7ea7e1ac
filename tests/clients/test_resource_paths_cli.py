"""``manage.py client update … --rotating-paths`` and ``client path-key rotate`` (docs/cli.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from authserver.audit.models import AuditEvent
from clients.resource_paths.models import ResourceServerPaths
from tests.cli.helpers import fail, run

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://chat.example.test/v1"


def test_turn_on_show_rotate_turn_off(capsys: Any, resource_server: Any) -> None:
    rs, _ = resource_server
    assert run(capsys, "client", "show", rs.client_id)["rotating_paths"] == {"rotating": False}
    updated = run(capsys, "client", "update", rs.client_id, "--rotating-paths", "on", "--public-url", PUBLIC_URL,
                  "--per-client-aliases", "on", "--path-window", "600")
    assert updated["rotating_paths"] == {"rotating": True, "public_url": PUBLIC_URL, "per_client_aliases": True,
                                         "window_seconds": 600, "key_version": 1, "key_rotated": None}
    key = ResourceServerPaths.objects.get(client=rs).path_key
    shown = run(capsys, "client", "show", rs.client_id)
    assert shown["rotating_paths"]["rotating"] is True
    rotated = run(capsys, "client", "path-key", "rotate", rs.client_id)
    assert rotated["key_version"] == 2 and rotated["key_rotated"]
    new_key = ResourceServerPaths.objects.get(client=rs).path_key
    assert new_key != key
    for out in (updated, shown, rotated):
        assert key not in str(out) and new_key not in str(out)  # the key is never printed
    off = run(capsys, "client", "update", rs.client_id, "--rotating-paths", "off", "--path-window", "")
    assert off["rotating_paths"]["rotating"] is False and off["rotating_paths"]["window_seconds"] == 86400
    assert [e.actor for e in AuditEvent.objects.filter(event__startswith="resource_server.")] == ["cli"] * 3


def test_a_client_that_is_no_resource_server_has_no_paths(capsys: Any, service_client: Any) -> None:
    app, _ = service_client
    assert "rotating_paths" not in run(capsys, "client", "show", app.client_id)
    code, error = fail(capsys, "client", "update", app.client_id, "--rotating-paths", "off")
    assert code == 1 and "resource server" in error["error"]
    code, error = fail(capsys, "client", "path-key", "rotate", app.client_id)
    assert code == 1 and "resource server" in error["error"]


@pytest.mark.parametrize(("args", "message"), [
    (["--rotating-paths", "on"], "public URL"),
    (["--public-url", "http://chat.example.test/"], "https"),
    (["--public-url", "https://chat.example.test/?a=b"], "query"),
    (["--path-window", "0"], "at least 1"),
    (["--path-window", "ten"], "whole number"),
])
def test_bad_values_exit_1_and_change_nothing(capsys: Any, resource_server: Any, args: list[str], message: str) -> None:
    rs, _ = resource_server
    code, error = fail(capsys, "client", "update", rs.client_id, "--contact-email", "ops@example.test", *args)
    assert code == 1 and message in error["error"]
    rs.refresh_from_db()
    assert rs.contact_email == ""  # one transaction: the contact change was rolled back too
    assert not AuditEvent.objects.filter(event="resource_server.paths_updated").exists()


@pytest.mark.parametrize("args", [["--rotating-paths", "yes"], ["--per-client-aliases", "1"]])
def test_on_or_off_only(resource_server: Any, args: list[str]) -> None:
    rs, _ = resource_server
    with pytest.raises(CommandError, match="choose from 'on', 'off'"):  # a usage error (exit 2 in a process)
        call_command("client", "update", rs.client_id, *args)
