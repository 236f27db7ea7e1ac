"""The revocation generation: one request view per request, invalidation everywhere, never repeated."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from authserver import revocation
from authserver.revocation.store import REDIS_KEY, GenerationUnavailable


@pytest.fixture(autouse=True)
def fresh():
    revocation.reset_for_tests()
    yield
    revocation.reset_for_tests()


@pytest.mark.django_db
def test_request_view_trusts_the_current_generation():
    view = revocation.request_view()
    assert view.generation is not None
    assert view.generation == revocation.current()


@pytest.mark.django_db
def test_a_bump_drops_what_was_cached_before_it():
    generation = revocation.current()
    revocation.access_tokens.put("d", {"row": 1}, expires_at=time.time() + 60, generation=generation)
    assert revocation.request_view().get(revocation.access_tokens, "d") == {"row": 1}
    assert revocation.bump() > generation
    assert revocation.request_view().get(revocation.access_tokens, "d") is None


@pytest.mark.django_db
def test_another_process_bump_is_seen_within_the_check_interval():
    before = revocation.current()
    revocation._shared.bump()  # as another process would: this process's copy is now stale
    time.sleep(revocation.CHECK_INTERVAL + 0.02)
    assert revocation.current() > before


@pytest.mark.django_db
def test_an_unreadable_store_trusts_nothing(monkeypatch):
    def down() -> int:
        raise GenerationUnavailable("store down")

    monkeypatch.setattr(revocation._shared, "state", down)
    assert revocation.current() is None
    assert revocation.request_view().generation is None


@pytest.mark.django_db
def test_an_unreachable_database_trusts_nothing(monkeypatch):
    monkeypatch.setattr(revocation, "_database_reachable", lambda: False)
    assert revocation.request_view().generation is None


@pytest.mark.django_db(transaction=True)
def test_invalidate_bumps_now_and_again_after_commit():
    start = revocation.current()
    with transaction.atomic():
        revocation.invalidate()
        inside = revocation.current()
        assert inside > start
    assert revocation.current() > inside


@pytest.mark.django_db(transaction=True)
def test_an_explicit_revocation_trusts_no_cache_anywhere_until_it_commits():
    start = revocation.current()
    with transaction.atomic():
        revocation.invalidate(settle=True)
        assert revocation.current() is None, "a revocation is open: nothing cached is trusted until it commits"
        assert revocation._shared.state().settled(time.time()) is False, "...by any process"
        assert revocation._state["generation"] > start
    assert revocation._shared.state().settled(time.time()) is True
    assert revocation.current() > start


@pytest.mark.django_db(transaction=True)
def test_settled_invalidation_waits_before_returning():
    started = time.monotonic()
    with transaction.atomic():
        revocation.invalidate(settle=True)
    assert time.monotonic() - started >= revocation.CHECK_INTERVAL


@pytest.mark.django_db
def test_invalidate_raises_when_it_cannot_fan_out_unless_quiet(monkeypatch):
    def down(**_: object) -> int:
        raise GenerationUnavailable("store down")

    monkeypatch.setattr(revocation._shared, "bump", down)
    with pytest.raises(GenerationUnavailable):
        revocation.invalidate()
    revocation.invalidate(quietly=True)  # logged, not raised: readers trust no cache while it is down


@pytest.mark.django_db
def test_the_generation_never_repeats_after_the_store_is_emptied(settings):
    revocation.current()
    before = revocation.bump()
    if settings.REDIS_URL:  # a Redis restarted without its data
        revocation._shared._client().delete(REDIS_KEY)
    else:  # a deleted file
        revocation._shared._file().unlink()
    revocation.reset_for_tests()
    assert revocation.current() > before


@pytest.mark.django_db
def test_a_closed_connection_is_not_vouched_for_by_an_earlier_check(monkeypatch):
    """The request after a database error runs on a closed connection: the "ok" from before the
    error, though recent, says nothing about it (seen as a cached answer served with the database
    down, on a web thread whose failed request had closed its connection)."""
    from django.db import connections

    connection = connections["default"]  # the wrapper itself, not the thread-local proxy
    assert revocation._database_reachable() is True
    # What Django does at the end of a request that hit a database error: the thread is left with
    # no connection (set directly: inside the test's transaction Django would defer the close).
    monkeypatch.setattr(connection, "connection", None)

    def down() -> None:
        raise OSError("server closed the connection")

    monkeypatch.setattr(connection, "ensure_connection", down)
    assert revocation._database_reachable() is False
    assert revocation.request_view().generation is None


@pytest.mark.django_db
def test_a_raw_connection_that_raises_on_fileno_is_not_usable(monkeypatch):
    """psycopg raises OperationalError("the connection is closed"), not OSError, from fileno() of a
    connection Django still holds after the server closed it: that is "not reachable" (no cached
    answer), never a 500."""
    from django.db import OperationalError, connections

    connection = connections["default"]
    assert revocation._database_reachable() is True

    class Closed:
        def fileno(self) -> int:
            raise OperationalError("the connection is closed")

    monkeypatch.setattr(connection, "connection", Closed())
    assert revocation._database_reachable() is False
