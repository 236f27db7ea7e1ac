"""Key-store operations are counted by backend, operation and outcome, whoever calls them."""

from __future__ import annotations

import pytest

from authserver.crypto.filestore import FileKeyStore
from authserver.crypto.keystore import DecryptionError
from tests.observability.helpers import delta, samples


def test_file_key_store_operations(tmp_path):
    store = FileKeyStore(tmp_path / "k.json")
    before = samples()
    version = store.initialize()
    wrapped = store.wrap(version, b"k" * 32, b"purpose")
    assert store.unwrap(version, wrapped, b"purpose") == b"k" * 32
    with pytest.raises(DecryptionError):
        store.unwrap(version, wrapped, b"another purpose")
    after = samples()

    def count(operation: str, outcome: str) -> float:
        return delta(before, after, "authserver_keystore_operations_total", backend="file", operation=operation,
                     outcome=outcome)

    assert (count("initialize", "ok"), count("wrap", "ok"), count("unwrap", "ok"), count("unwrap", "error")) == (
        1, 1, 1, 1)
