"""authserver.paths: the derivation is fixed (the kit re-derives it) and windows overlap by one."""

import base64
import hashlib
import hmac

import pytest

from authserver import paths

KEY = bytes(range(32))


def test_prefix_is_the_documented_hmac() -> None:
    mac = hmac.new(KEY, b"oauth|12345", hashlib.sha256).digest()
    assert paths.prefix(KEY, "oauth", 12345) == base64.b32encode(mac).decode().lower()[:16]
    # A pinned vector: the kit's copy is tested against the same string.
    assert paths.prefix(KEY, "oauth", 12345) == "cha3iw4b7rer5sfk"
    assert len(paths.prefix(KEY, "x", 0)) == 16


@pytest.mark.parametrize(("label", "window"), [("oauth", 12346), ("rs", 12345), ("oauth|c", 12345)])
def test_other_labels_and_windows_give_other_prefixes(label: str, window: int) -> None:
    assert paths.prefix(KEY, label, window) != paths.prefix(KEY, "oauth", 12345)


def test_other_keys_give_other_prefixes() -> None:
    assert paths.prefix(b"\x01" * 32, "oauth", 1) != paths.prefix(b"\x02" * 32, "oauth", 1)


def test_accepted_prefixes_are_previous_current_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "now", lambda: 3600 * 10 + 5.0)
    prev, cur, nxt = paths.accepted_prefixes(KEY, "oauth", 3600)
    assert (prev, cur, nxt) == tuple(paths.prefix(KEY, "oauth", w) for w in (9, 10, 11))
    assert paths.window_bounds(10, 3600) == (36000, 39600)
    assert paths.current_window(3600) == 10
