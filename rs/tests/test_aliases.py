"""Rotating path aliases (C6) with a controllable clock."""

from __future__ import annotations

import base64

import pytest

from authserver_rs import NotFound, Routed, paths

from .conftest import active

KEY = bytes(range(32))
WINDOW = 3600


def key_body(key: bytes = KEY, *, per_client: bool = False, version: int = 1) -> dict:
    return {"rotating": True, "key": base64.urlsafe_b64encode(key).rstrip(b"=").decode(), "version": version,
            "window_seconds": WINDOW, "per_client": per_client, "public_url": "https://api.test"}


def alias(clock, offset: int, label: str = "rs", key: bytes = KEY) -> str:
    return paths.prefix(key, label, paths.window_of(clock.now, WINDOW) + offset)


@pytest.fixture
def rotating(fake):
    fake.path_key = key_body()
    return fake


@pytest.mark.parametrize(("offset", "ok"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_current_and_adjacent_windows_are_accepted(rotating, make_kit, clock, offset, ok):
    kit = make_kit(rotating_paths=True, revocation_stream=False)
    path = f"/{alias(clock, offset)}/v1/infer"
    if ok:
        assert kit.route(path) == Routed(alias(clock, offset), "/v1/infer")
    else:
        with pytest.raises(NotFound):
            kit.route(path)


def test_alias_expires_as_windows_pass(rotating, make_kit, clock):
    kit = make_kit(rotating_paths=True, revocation_stream=False, key_refetch_interval=0)
    current = alias(clock, 0)
    clock.advance(WINDOW)  # now the previous window
    assert kit.route(f"/{current}/x").rest == "/x"
    clock.advance(WINDOW)  # two windows old
    with pytest.raises(NotFound):
        kit.route(f"/{current}/x")


@pytest.mark.parametrize("path", ["/", "/v1/infer", "/CHA3IW4B7RER5SFK/x", "/aaaaaaaaaaaaaaaa/x", "//x", "/%2e%2e/x"])
def test_unknown_aliases_are_404(rotating, make_kit, path):
    kit = make_kit(rotating_paths=True, revocation_stream=False)
    with pytest.raises(NotFound):
        kit.route(path)


def test_bare_alias_routes_to_root(rotating, make_kit, clock):
    kit = make_kit(rotating_paths=True, revocation_stream=False)
    assert kit.route(f"/{alias(clock, 0)}").rest == "/"


def test_unknown_alias_refetches_the_key_at_most_every_interval(rotating, make_kit, clock):
    kit = make_kit(rotating_paths=True, revocation_stream=False, key_refetch_interval=30)
    for _ in range(20):  # probes
        with pytest.raises(NotFound):
            kit.route("/aaaaaaaaaaaaaaaa/x")
    assert rotating.path_key_calls == 1  # the first fetch; probes within 30 s refetch nothing
    clock.advance(31)
    with pytest.raises(NotFound):
        kit.route("/aaaaaaaaaaaaaaaa/x")
    assert rotating.path_key_calls == 2


def test_rotated_key_takes_effect(rotating, make_kit, clock):
    kit = make_kit(rotating_paths=True, revocation_stream=False, key_refetch_interval=30)
    old = alias(clock, 0)
    kit.route(f"/{old}/x")
    new_key = b"\x01" * 32
    rotating.path_key = key_body(new_key, version=2)
    clock.advance(31)
    assert kit.route(f"/{alias(clock, 0, key=new_key)}/x").rest == "/x"
    with pytest.raises(NotFound):
        kit.route(f"/{old}/x")


def test_not_rotating_passes_paths_through(fake, make_kit):
    kit = make_kit(rotating_paths=True, revocation_stream=False)
    assert kit.route("/v1/infer") == Routed(None, "/v1/infer")


def test_key_unavailable_fails_closed(fake, make_kit):
    from authserver_rs import Unavailable
    kit = make_kit(rotating_paths=True, revocation_stream=False, client_secret="cs_wrong")
    with pytest.raises(Unavailable):
        kit.route("/v1/infer")


def test_per_client_alias_is_checked_against_the_introspected_client(fake, make_kit, clock):
    fake.path_key = key_body(per_client=True)
    fake.answers.update({"at_one": active("app-1"), "at_two": active("app-2")})
    kit = make_kit(rotating_paths=True, revocation_stream=False)
    mine = alias(clock, 0, "rs|app-1")
    routed = kit.route(f"/{mine}/v1/infer")
    assert routed.per_client and routed.rest == "/v1/infer"
    assert kit.authorize(routed, "Bearer at_one", None).client_id == "app-1"
    with pytest.raises(NotFound):  # another client's credential on app-1's alias
        kit.authorize(routed, "Bearer at_two", None)
    for header in (None, "Bearer at_unknown"):  # an alias no client can be found for: unknown path
        with pytest.raises(NotFound):
            kit.authorize(routed, header, None)
    with pytest.raises(NotFound):  # the shared label is not accepted in per-client mode
        kit.authorize(kit.route(f"/{alias(clock, 0)}/v1/infer"), "Bearer at_one", None)
