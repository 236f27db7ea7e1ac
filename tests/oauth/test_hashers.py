"""The client-secret hasher: one SHA-256 for server-minted secrets, and nothing else."""

from __future__ import annotations

import pytest

from authserver import credentials
from authserver.hashers import CredentialHasher

hasher = CredentialHasher()


def test_encode_and_verify_a_minted_secret():
    secret = credentials.mint(credentials.CLIENT_SECRET)
    encoded = hasher.encode(secret, hasher.salt())
    assert encoded == f"authserver_sha256${credentials.digest(secret)}"
    assert hasher.verify(secret, encoded) is True
    assert hasher.verify(credentials.mint(credentials.CLIENT_SECRET), encoded) is False


@pytest.mark.parametrize("password", ["hunter2", "", "cs_short", credentials.mint(credentials.ACCESS_TOKEN)])
def test_refuses_anything_but_a_server_minted_secret(password):
    with pytest.raises(ValueError):
        hasher.encode(password, "")
    assert hasher.verify(password, "authserver_sha256$" + credentials.digest(password)) is False


def test_summary_hides_the_hash_and_nothing_needs_updating():
    encoded = hasher.encode(credentials.mint(credentials.CLIENT_SECRET), "")
    assert hasher.decode(encoded) == {"algorithm": "authserver_sha256", "hash": encoded.partition("$")[2], "salt": ""}
    assert "********" in hasher.safe_summary(encoded).values()
    assert hasher.must_update(encoded) is False
    assert hasher.harden_runtime("x", encoded) is None
