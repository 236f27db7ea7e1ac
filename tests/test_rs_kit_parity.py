"""The resource-server kit (rs/, package authserver_rs) carries its own copy of the alias derivation,
since it cannot import the server: both must derive the same prefixes (C1, C6)."""

from __future__ import annotations

import pytest
from authserver_rs import paths as kit_paths

from authserver import paths

KEYS = [bytes(range(32)), b"\x00" * 32, b"\xff" * 32, bytes(range(255, 223, -1)), b"short", b"k" * 64]
LABELS = ["oauth", "rs", "rs|app-1", "rs|client with spaces", "rs|ünïcode", ""]
WINDOWS = [0, 1, 12345, 2**31, -1, 20_833]


def test_pinned_vector_in_both():
    assert paths.prefix(bytes(range(32)), "oauth", 12345) == "cha3iw4b7rer5sfk"
    assert kit_paths.prefix(bytes(range(32)), "oauth", 12345) == "cha3iw4b7rer5sfk"


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("label", LABELS)
def test_prefix_agrees(key, label):
    for window in WINDOWS:
        assert kit_paths.prefix(key, label, window) == paths.prefix(key, label, window)


@pytest.mark.parametrize(("timestamp", "window_seconds"), [(0.0, 1), (1_800_000_000.5, 86400), (3599.999, 3600),
                                                           (3600.0, 3600), (1_800_000_000.0, 7)])
def test_windows_and_accepted_agree(monkeypatch, timestamp, window_seconds):
    monkeypatch.setattr(paths, "now", lambda: timestamp)
    assert kit_paths.window_of(timestamp, window_seconds) == paths.window_of(timestamp, window_seconds)
    assert kit_paths.accepted(KEYS[0], "rs", window_seconds, timestamp) == paths.accepted_prefixes(
        KEYS[0], "rs", window_seconds)
    assert all(kit_paths.well_formed(p) for p in paths.accepted_prefixes(KEYS[0], "rs", window_seconds))
