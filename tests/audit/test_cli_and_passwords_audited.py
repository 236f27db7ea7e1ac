"""Issue 13, item 3: key-store operations, backup and restore, and password changes on every path.

Each is one event with its actor (``cli`` from a command, the signed-in user from a page) and its
details, never a secret: no password hash, no key, no archive path beyond the file's name.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client as HttpClient

from authserver.audit.models import AuditEvent
from tests.crypto.conftest import isolated_key_file  # noqa: F401 - each test's own key store
from tests.crypto.test_backup import make_archive, scratch_database
from tests.factories import PASSWORD, UserFactory

PASSWORD_EVENT = "user.password_changed"


def _since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))


def _mark() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _only(mark: int, event: str) -> AuditEvent:
    written = _since(mark)
    assert [e.event for e in written] == [event], [(e.event, e.actor) for e in written]
    return written[0]


# -- key store ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_keys_rotate_retire_and_foreground_run_each_write_one_event() -> None:
    call_command("keys", "check", stdout=StringIO())
    mark = _mark()
    call_command("keys", "rotate", stdout=StringIO())  # the job is enqueued after the commit
    rotated = _only(mark, "keystore.rotated")
    assert (rotated.actor, rotated.subject, rotated.details["version"]) == ("cli", "kek:2", 2)

    mark = _mark()
    call_command("keys", "rotate", "--foreground", stdout=StringIO())
    assert [(e.event, e.actor, e.subject) for e in _since(mark)] == [
        ("keystore.rotated", "cli", "kek:3"), ("keystore.rotation_finished", "cli", "kek:3")]

    for version in (1, 2):
        mark = _mark()
        call_command("keys", "retire", str(version), stdout=StringIO())
        retired = _only(mark, "keystore.retired")
        assert (retired.actor, retired.subject, retired.details["version"]) == ("cli", f"kek:{version}", version)
        assert "data_keys_deleted" in retired.details


@pytest.mark.django_db
def test_a_refused_retirement_writes_nothing() -> None:
    call_command("keys", "check", stdout=StringIO())
    mark = _mark()
    with pytest.raises(Exception, match="current version"):
        call_command("keys", "retire", "1", stdout=StringIO())
    assert _since(mark) == []


def test_backup_and_restore_each_write_one_event(transactional_db: Any, tmp_path: Any) -> None:
    mark = _mark()
    archive, _ = make_archive(tmp_path)
    created = _only(mark, "backup.created")
    assert created.actor == "cli" and created.subject == f"backup:{archive.name}"
    assert created.details["file"] == archive.name and str(tmp_path) not in str(created.details)
    assert created.details["bytes"] == archive.stat().st_size and created.details["kek_version"] == 1

    with scratch_database(tmp_path) as target:
        mark = _mark()
        call_command("restore", str(archive), "--database-url", target.url, stdout=io.StringIO(),
                     stderr=io.StringIO())
        restored = _only(mark, "backup.restored")
        assert restored.actor == "cli" and restored.details["file"] == archive.name
        assert restored.details["into"] == "--database-url"


# -- passwords ----------------------------------------------------------------------------------------
def _changepassword(user: Any) -> None:
    with mock.patch("getpass.getpass", return_value="another long passphrase 99"):
        call_command("changepassword", user.username, stdout=StringIO())


def _set_password(user: Any) -> None:
    user.set_password("set and saved passphrase 12")
    user.save()


def _assigned_hash(user: Any) -> None:
    from django.contrib.auth.hashers import make_password

    user.password = make_password("assigned directly 1234")
    user.save()


def _unusable(user: Any) -> None:
    user.set_unusable_password()
    user.save(update_fields=["password"])


PATHS: dict[str, Callable[[Any], None]] = {
    "changepassword": _changepassword,
    "set_password-and-save": _set_password,
    "hash-assigned": _assigned_hash,
    "set_unusable_password": _unusable,
}


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_password_change_path_writes_one_event(path: str) -> None:
    user = UserFactory(username="changing")
    mark = _mark()
    PATHS[path](user)
    event = _only(mark, PASSWORD_EVENT)
    assert (event.actor, event.subject, event.details["new_user"]) == ("cli", f"user:{user.pk}", False)
    assert event.details["usable"] is (path != "set_unusable_password")
    stored = get_user_model().objects.get(pk=user.pk).password
    assert stored not in str(event.details) and stored.split("$")[-1] not in str(event.details)


@pytest.mark.django_db
def test_createsuperuser_writes_one_event_for_the_new_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first run passphrase 31")
    mark = _mark()
    call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "", stdout=StringIO())
    boss = get_user_model().objects.get(username="boss")
    event = _only(mark, PASSWORD_EVENT)
    assert (event.actor, event.subject) == ("cli", f"user:{boss.pk}")
    assert event.details == {"new_user": True, "usable": True, "staff": True, "superuser": True}


@pytest.mark.django_db
def test_saves_that_keep_the_password_write_nothing(settings: Any) -> None:
    user = UserFactory(username="keeping")
    mark = _mark()
    user.first_name = "Kept"
    user.save()  # a full save, same hash
    http = HttpClient()
    assert http.login(username="keeping", password=PASSWORD)  # last_login, and maybe a hash upgrade
    user.refresh_from_db()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    assert user.check_password(PASSWORD)  # the preferred hasher changed: the hash is upgraded, same password
    assert get_user_model().objects.get(pk=user.pk).password.startswith("md5$")
    assert [e.event for e in _since(mark)] == ["login.success"]


@pytest.mark.django_db
def test_a_password_changed_on_a_page_names_the_signed_in_user() -> None:
    from tests.helpers import staff_login

    root = get_user_model().objects.create_superuser("root", "root@example.test", None)
    target = UserFactory(username="target")
    http = HttpClient()
    staff_login(http, root)
    mark = _mark()
    new = "page changed passphrase 8080"
    response = http.post(f"/{_admin_path()}/auth/user/{target.pk}/password/",
                         {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    event = _only(mark, PASSWORD_EVENT)
    assert (event.actor, event.subject) == (f"user:{root.pk}", f"user:{target.pk}")


def _admin_path() -> str:
    from django.conf import settings

    return str(settings.ADMIN_PATH).strip("/")
