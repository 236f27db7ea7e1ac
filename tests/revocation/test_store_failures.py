"""The revocation store failing: before commit (503, rolled back), after commit (200, nothing stale).

Issue 12 items 4 and 7: a full disk or a read-only data directory made a revocation answer 500;
a bump that failed after commit answered 503 although the revocation had committed.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.db import transaction

from authserver import revocation
from authserver.oauth.models import AccessToken
from authserver.revocation.store import GenerationUnavailable, SharedGeneration
from tests.faults.redis import ThrowawayRedis
from tests.helpers import REVOKE_URL, basic_auth, client_credentials, introspect

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh():
    revocation.reset_for_tests()
    yield
    revocation.reset_for_tests()


@pytest.fixture
def issued(client, resource_server, service_client):
    """A token of ``service_client``, introspected once (so cached) by ``resource_server``."""
    app, secret = service_client
    rs, rs_secret = resource_server
    token = client_credentials(client, app, secret).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    return app, secret, rs, rs_secret, token


def _revoke(client, app, secret, token):
    return client.post(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))


def _file_store(settings, path: Path) -> None:
    settings.REDIS_URL = ""
    revocation._shared.forget_connections()
    revocation._shared._path = path / "revocation-generation"


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["disk-full", "read-only", "denied"])
def test_a_store_that_cannot_be_written_answers_503_and_rolls_back(client, issued, settings, tmp_path, monkeypatch,
                                                                   error):
    _file_store(settings, tmp_path)
    app, secret, rs, rs_secret, token = issued
    real_open = open

    def failing_open(file, mode="r", *args, **kwargs):
        if str(file).endswith(".tmp") and "w" in mode:
            raise OSError(error, "injected")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    response = _revoke(client, app, secret, token)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"]
    assert AccessToken.objects.filter(application=app).exists(), "rolled back: nothing committed"
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    monkeypatch.undo()
    _file_store(settings, tmp_path)
    assert _revoke(client, app, secret, token).status_code == 200
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}


def _mount_tmpfs(where: Path, size: str) -> bool:
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path):
    where = tmp_path / "tiny"
    where.mkdir()
    if not _mount_tmpfs(where, "64k"):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the injected-error cases above cover the logic")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_really_full_disk_and_a_read_only_mount(client, issued, settings, tiny_disk):
    _file_store(settings, tiny_disk)
    app, secret, rs, rs_secret, token = issued
    before = revocation._shared.read()  # the file exists; now fill what is left
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"x" * 1024)
                out.flush()
        except OSError:
            pass
    assert _revoke(client, app, secret, token).status_code == 503
    assert AccessToken.objects.filter(application=app).exists()
    assert revocation._shared.read() == before, "the previous file is whole"
    assert not (tiny_disk / "revocation-generation.tmp").exists()
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    assert _revoke(client, app, secret, token).status_code == 503
    assert AccessToken.objects.filter(application=app).exists()
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert _revoke(client, app, secret, token).status_code == 200
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}


def _fail_closing(monkeypatch):
    real = revocation._shared.bump

    def bump(*, opening=None, closing=None):
        if closing is not None:
            raise GenerationUnavailable("injected")
        return real(opening=opening, closing=closing)

    monkeypatch.setattr(revocation._shared, "bump", bump)


def test_a_failed_bump_after_commit_answers_200_and_nothing_stale_is_served(
        client, issued, monkeypatch, django_capture_on_commit_callbacks):
    app, secret, rs, rs_secret, token = issued
    _fail_closing(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        response = _revoke(client, app, secret, token)
    assert response.status_code == 200, "the revocation committed: say so"
    assert not AccessToken.objects.filter(application=app).exists()
    assert revocation.current() is None, "this process trusts no cache until the bump succeeds"
    other = SharedGeneration()  # another process reading the store: the change is still open
    assert other.state().settled(time.time()) is False
    assert introspect(client, rs, rs_secret, token).json() == {"active": False}
    stale = revocation._state["generation"]
    monkeypatch.undo()  # the store works again: the retry thread closes the change
    deadline = time.monotonic() + 5
    while revocation._unclosed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not revocation._unclosed
    assert other.state().settled(time.time()) is True
    time.sleep(revocation.CHECK_INTERVAL + 0.01)
    assert revocation.current() > stale


def test_an_answer_cached_while_a_change_was_open_is_never_served(monkeypatch, django_capture_on_commit_callbacks):
    """Another worker read the generation after the bump before commit and cached the old row:
    with the bump after commit failing, nothing may serve it."""
    _fail_closing(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        revocation.invalidate(settle=True)
        opened = revocation._state["generation"]
        assert SharedGeneration().state().settled(time.time()) is False, "readers see the open change"
        revocation.access_tokens.put("d", {"row": "old"}, expires_at=time.time() + 60, generation=opened)
    time.sleep(revocation.CHECK_INTERVAL + 0.01)
    assert revocation.request_view().get(revocation.access_tokens, "d") is None


@pytest.mark.django_db(transaction=True)
def test_redis_killed_between_commit_and_bump(settings):
    redis_server = ThrowawayRedis()
    redis_server.start()
    try:
        settings.REDIS_URL = redis_server.url
        revocation.reset_for_tests()
        before = revocation.current()
        assert before is not None
        with transaction.atomic():
            revocation.invalidate(settle=True)  # opened: Redis was up
            redis_server.kill()
        # Committed; the bump after commit failed: no exception, nothing cached trusted.
        assert revocation._unclosed
        time.sleep(revocation.CHECK_INTERVAL + 0.01)
        assert revocation.current() is None
        redis_server.start()  # without its data: the generation starts again from the clock
        deadline = time.monotonic() + 10
        while revocation._unclosed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not revocation._unclosed, "the retry closed the change once Redis was back"
        time.sleep(revocation.CHECK_INTERVAL + 0.01)
        assert revocation.current() > before
    finally:
        redis_server.kill()
        revocation._unclosed.clear()


def test_a_malformed_file_is_unknown_until_repaired(settings, tmp_path):
    _file_store(settings, tmp_path)
    high = revocation._shared.bump()
    (tmp_path / "revocation-generation").write_text('{"generation": ')
    state = revocation._shared.state()
    assert state.generation > high
    assert state.settled(time.time()) is False, "the lost content may have held an open change"
    assert revocation.current() is None
