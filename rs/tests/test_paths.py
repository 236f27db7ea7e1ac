from __future__ import annotations

import pytest

from authserver_rs import paths


def test_pinned_vector():
    assert paths.prefix(bytes(range(32)), "oauth", 12345) == "cha3iw4b7rer5sfk"


def test_accepted_is_previous_current_next():
    key = b"k" * 32
    assert paths.accepted(key, "rs", 100, 1050.0) == tuple(paths.prefix(key, "rs", w) for w in (9, 10, 11))


@pytest.mark.parametrize(("segment", "ok"), [
    ("cha3iw4b7rer5sfk", True), ("CHA3IW4B7RER5SFK", False), ("cha3iw4b7rer5sf", False),
    ("cha3iw4b7rer5sfk0", False), ("cha3iw4b7rer5sf1", False), ("", False), ("v1", False)])
def test_well_formed(segment, ok):
    assert paths.well_formed(segment) is ok
