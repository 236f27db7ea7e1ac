"""User codes (RFC 8628 §6.1): alphabet, display form, forgiving input, digests."""

from __future__ import annotations

import pytest

from authserver.oauth.device import user_codes


def test_generated_codes_are_eight_consonants_shown_in_two_groups():
    codes = {user_codes.generate() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 9 and code[4] == "-"
        assert set(code.replace("-", "")) <= set(user_codes.ALPHABET)
        assert user_codes.display(user_codes.normalise(code) or "") == code


@pytest.mark.parametrize(("typed", "expected"), [
    ("BCDF-GHJK", "BCDFGHJK"),
    ("bcdf-ghjk", "BCDFGHJK"),
    ("bcdfghjk", "BCDFGHJK"),
    (" BCDF GHJK ", "BCDFGHJK"),
    ("B-C-D-F-G-H-J-K", "BCDFGHJK"),
])
def test_input_is_case_and_separator_insensitive(typed, expected):
    assert user_codes.normalise(typed) == expected


@pytest.mark.parametrize("typed", [
    "", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH",  # vowels are not in the alphabet
    "BCDF-GHJ0", "BCDF_GHJK", "BCDF\x00GHJK", "B" * 33, None, 12345678, ["BCDFGHJK"],
])
def test_malformed_input_is_none(typed):
    assert user_codes.normalise(typed) is None


def test_digest_is_of_the_normalised_code_and_never_the_code():
    digest = user_codes.digest("BCDFGHJK")
    assert len(digest) == 64 and "BCDF" not in digest
    assert digest != user_codes.digest("BCDFGHJL")


@pytest.mark.django_db
def test_a_user_code_clash_draws_again(monkeypatch, device_client):
    from authserver.oauth.device.models import DeviceAuthorization
    from authserver.oauth.device.services import device_authorization_start

    drawn = iter(["BCDF-GHJK", "BCDF-GHJK", "BCDF-GHJL"])
    monkeypatch.setattr(user_codes, "generate", lambda: next(drawn))
    first = device_authorization_start(client=device_client, scopes=[], resources=[])[2]
    second = device_authorization_start(client=device_client, scopes=[], resources=[])[2]
    assert (first, second) == ("BCDF-GHJK", "BCDF-GHJL")
    assert DeviceAuthorization.objects.count() == 2
