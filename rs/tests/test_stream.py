"""Pushed revocations (C7): what each event drops, the stream-down rule, resume, and the race."""

from __future__ import annotations

import hashlib

import pytest

from authserver_rs import InvalidToken

from .conftest import active, wait_for


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def cached(kit, *credentials: str) -> None:
    for credential in credentials:
        kit.authenticate(credential, None)


@pytest.mark.parametrize("kind", ["access_token", "refresh_token", "api_key"])
def test_digest_event_drops_that_credential_only(fake, make_kit, connected, kind):
    kit = connected(make_kit())
    fake.answers.update({"at_one": active(), "at_two": active()})
    cached(kit, "at_one", "at_two")
    del fake.answers["at_one"]  # revoked at the server
    epoch = kit.cache.epoch
    fake.revoke(kind, digest=sha("at_one"))
    wait_for(lambda: kit.cache.epoch > epoch)
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)
    kit.authenticate("at_two", None)
    assert [f["token"] for f in fake.introspections] == ["at_one", "at_two", "at_one"]


def test_client_event_drops_every_answer_naming_that_client(fake, make_kit, connected):
    kit = connected(make_kit())
    fake.answers.update({"at_a1": active("app-1"), "ak_a1": active("app-1", token_type="api_key"),
                         "at_b": active("app-2")})
    cached(kit, "at_a1", "ak_a1", "at_b")
    epoch = kit.cache.epoch
    fake.revoke("client", client_id="app-1")
    wait_for(lambda: kit.cache.epoch > epoch)
    assert len(kit.cache) == 1
    cached(kit, "at_b")
    assert len(fake.introspections) == 3


@pytest.mark.parametrize(("event", "data"), [
    ("revocation", '{"kind": "generation", "at": 1.0}'), ("reset", "{}"),
    ("revocation", '{"kind": "something-new"}'), ("revocation", "not json"), ("surprise", "{}")])
def test_flushing_events(fake, make_kit, connected, event, data):
    kit = connected(make_kit())
    fake.answers.update({"at_one": active(), "at_two": active("app-2")})
    cached(kit, "at_one", "at_two")
    epoch = kit.cache.epoch
    fake.emit(event, data)
    wait_for(lambda: kit.cache.epoch > epoch)
    assert len(kit.cache) == 0


def test_no_cached_answer_is_served_while_the_stream_cannot_connect(fake, make_kit):
    fake.stream_status = 503
    kit = make_kit()
    fake.answers["at_one"] = active()
    for _ in range(3):
        kit.authenticate("at_one", None)
    assert len(fake.introspections) == 3
    assert not kit.stream.healthy()


def test_stalled_stream_stops_the_cache_after_stream_grace(fake, make_kit, connected, clock):
    kit = connected(make_kit(stream_grace=3))
    fake.answers["at_one"] = active()
    cached(kit, "at_one", "at_one")
    assert len(fake.introspections) == 1
    clock.advance(3.5)  # nothing heard for longer than stream_grace
    cached(kit, "at_one", "at_one")
    assert len(fake.introspections) == 3  # introspected each time, and not stored
    fake.heartbeat()
    wait_for(kit.stream.healthy)
    cached(kit, "at_one")
    assert len(fake.introspections) == 3  # the entry from before the stall is served again


def test_resume_with_last_event_id_applies_the_replay_before_serving(fake, make_kit, connected):
    kit = connected(make_kit())
    fake.answers.update({"at_one": active(), "at_two": active()})
    seen = fake.revoke("access_token", digest=sha("at_unrelated"))
    wait_for(lambda: kit.stream.last_event_id == str(seen))
    cached(kit, "at_one", "at_two")
    # The stream goes down and can't come back for a while; meanwhile at_one is revoked.
    fake.stream_status = 503
    fake.drop_streams()
    wait_for(lambda: not kit.stream.connected)
    del fake.answers["at_one"]
    fake.revoke("access_token", digest=sha("at_one"))
    with pytest.raises(InvalidToken):  # down: introspected, not served from the cache
        kit.authenticate("at_one", None)
    cached(kit, "at_two")
    assert len(fake.introspections) == 4
    # Back, but the replay has no heartbeat after it yet: not caught up, nothing served from cache.
    fake.heartbeat_after_replay = False
    fake.stream_status = 200
    wait_for(lambda: kit.stream.connected)
    assert fake.last_event_ids[-1] == str(seen)
    cached(kit, "at_two")
    assert len(fake.introspections) == 5
    fake.heartbeat()
    wait_for(kit.stream.healthy)
    cached(kit, "at_two")
    assert len(fake.introspections) == 5
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)


def test_fresh_connection_without_last_event_id_gets_reset(fake, make_kit, connected):
    kit = connected(make_kit())
    assert fake.last_event_ids == [None]
    assert kit.stream.last_event_id == "0"


def test_answer_fetched_before_a_revocation_whose_event_arrived_meanwhile_is_not_cached(fake, make_kit, connected):
    """The race: the server answered "active", then the credential was revoked and its event reached
    the kit before the answer was stored. Storing it would serve a revoked credential for cache_ttl."""
    kit = connected(make_kit(cache_ttl=60))
    fake.answers["at_one"] = active()

    def revoke_while_answer_in_flight(token: str) -> None:
        epoch = kit.cache.epoch
        del fake.answers[token]
        fake.revoke("access_token", digest=sha(token))
        wait_for(lambda: kit.cache.epoch > epoch)  # the event is applied before the answer lands

    fake.on_introspect = revoke_while_answer_in_flight
    kit.authenticate("at_one", None)  # this request was answered before the revocation
    fake.on_introspect = None
    with pytest.raises(InvalidToken):
        kit.authenticate("at_one", None)
    assert len(fake.introspections) == 2


def test_answer_fetched_across_a_lost_stream_is_not_cached(fake, make_kit, connected):
    kit = connected(make_kit())
    fake.answers["at_one"] = active()

    def lose_stream(token: str) -> None:
        fake.drop_streams()
        wait_for(lambda: kit.cache.epoch > epoch)

    epoch = kit.cache.epoch
    fake.on_introspect = lose_stream
    kit.authenticate("at_one", None)
    fake.on_introspect = None
    wait_for(kit.stream.healthy)
    kit.authenticate("at_one", None)
    assert len(fake.introspections) == 2
