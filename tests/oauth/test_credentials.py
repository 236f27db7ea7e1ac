"""The one credential format: ``<type>_<43 base62 random><6 base62 CRC32>`` (docs/decisions/0001-one-credential-format.md)."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from authserver import credentials
from authserver.credentials import (
    ALPHABET,
    BODY_LENGTH,
    CHECKSUM_LENGTH,
    RANDOM_LENGTH,
    credential_type,
    digest,
    hint,
    is_well_formed,
    mint,
)

TYPES = ["at", "rt", "cs", "ac"]
# A fixed, known-good credential for each type (built from a fixed random part, so that the rows
# below are reproducible and independent of mint()).
FIXED_RANDOM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"
assert len(FIXED_RANDOM) == RANDOM_LENGTH


def fixed(kind: str) -> str:
    return f"{kind}_{FIXED_RANDOM}{credentials._checksum(kind, FIXED_RANDOM)}"


def flip(value: str, index: int) -> str:
    """``value`` with the character at ``index`` replaced by another base62 character."""
    ch = value[index]
    replacement = ALPHABET[(ALPHABET.index(ch) + 1) % len(ALPHABET)]
    return value[:index] + replacement + value[index + 1 :]


@pytest.mark.parametrize("kind", TYPES)
def test_well_formed_for_each_type(kind):
    value = fixed(kind)
    assert is_well_formed(value)
    assert is_well_formed(value, kind)
    assert credential_type(value) == kind
    for other in TYPES:
        if other != kind:
            assert not is_well_formed(value, other)


@pytest.mark.parametrize("kind", TYPES)
def test_minted_for_each_type(kind):
    value = mint(kind)
    assert is_well_formed(value, kind)
    assert len(value) == len(kind) + 1 + BODY_LENGTH
    assert re.fullmatch(rf"{kind}_[0-9A-Za-z]{{{BODY_LENGTH}}}", value)


GOOD = fixed("at")
BODY_START = 3  # len("at_")

MALFORMED = [
    pytest.param(fixed("rt"), "at", id="other-type-when-at-expected"),
    pytest.param(fixed("cs"), "ac", id="other-type-when-ac-expected"),
    pytest.param("rt" + GOOD[2:], None, id="relabelled-prefix"),
    pytest.param("xx" + GOOD[2:], None, id="unknown-prefix"),
    pytest.param("AT" + GOOD[2:], None, id="uppercase-prefix"),
    pytest.param(GOOD.replace("_", "-", 1), None, id="dash-separator"),
    pytest.param(GOOD.replace("_", "", 1), None, id="no-separator"),
    pytest.param("at__" + GOOD[3:-1], None, id="double-separator"),
    pytest.param(GOOD[:-1], None, id="length-minus-one"),
    pytest.param(GOOD + "A", None, id="length-plus-one"),
    pytest.param(GOOD[:BODY_START] + GOOD[BODY_START + 1 :], None, id="random-part-minus-one"),
    pytest.param(GOOD[:BODY_START] + "A" + GOOD[BODY_START:], None, id="random-part-plus-one"),
    pytest.param(GOOD[:10] + "-" + GOOD[11:], None, id="dash-in-body"),
    pytest.param(GOOD[:10] + "_" + GOOD[11:], None, id="underscore-in-body"),
    pytest.param(GOOD[:10] + "é" + GOOD[11:], None, id="unicode-in-body"),
    pytest.param(GOOD[:10] + "٣" + GOOD[11:], None, id="arabic-indic-digit"),
    pytest.param(GOOD[:10] + "Ａ" + GOOD[11:], None, id="fullwidth-letter"),
    pytest.param(GOOD[:10] + " " + GOOD[11:], None, id="space-in-body"),
    pytest.param(GOOD[:-1] + "\n", None, id="newline-at-end"),
    pytest.param(GOOD + "\n", None, id="trailing-newline"),
    pytest.param(" " + GOOD, None, id="leading-space"),
    pytest.param(GOOD[:10] + "+" + GOOD[11:], None, id="base64-plus"),
    pytest.param(GOOD[:10] + "/" + GOOD[11:], None, id="base64-slash"),
    pytest.param(GOOD[:10] + "=" + GOOD[11:], None, id="base64-padding"),
    pytest.param(GOOD[:10] + "\x00" + GOOD[11:], None, id="nul-byte"),
    pytest.param(flip(GOOD, -1), None, id="checksum-flip-last"),
    pytest.param(flip(GOOD, -CHECKSUM_LENGTH), None, id="checksum-flip-first"),
    pytest.param(flip(GOOD, -3), None, id="checksum-flip-middle"),
    pytest.param(flip(GOOD, BODY_START), None, id="random-flip-first"),
    pytest.param(flip(GOOD, BODY_START + 21), None, id="random-flip-middle"),
    pytest.param(flip(GOOD, BODY_START + RANDOM_LENGTH - 1), None, id="random-flip-last"),
    pytest.param(GOOD[:BODY_START] + GOOD[BODY_START + 1] + GOOD[BODY_START] + GOOD[BODY_START + 2 :], None,
                 id="random-transposition"),
    pytest.param(GOOD.swapcase().replace("AT_", "at_"), None, id="body-case-swapped"),
    pytest.param(GOOD[:BODY_START] + "0" * BODY_LENGTH, None, id="all-zeros"),
    pytest.param("", None, id="empty"),
    pytest.param("_", None, id="separator-only"),
    pytest.param("at_", None, id="prefix-only"),
    pytest.param(None, None, id="none"),
    pytest.param(12345, None, id="int"),
    pytest.param(GOOD.encode(), None, id="bytes"),
    pytest.param(["at", GOOD[3:]], None, id="list"),
    pytest.param("at_" + "A" * (1024 * 1024), None, id="one-megabyte"),
    pytest.param("a" * 17 + "_" + GOOD[3:], None, id="prefix-too-long"),
    pytest.param("1t" + GOOD[2:], None, id="prefix-starts-with-digit"),
    pytest.param(digest(GOOD), None, id="sha256-hex-digest"),
]


@pytest.mark.parametrize(("value", "kind"), MALFORMED)
def test_malformed(value, kind):
    assert is_well_formed(value, kind) is False
    if isinstance(value, str) and kind is None:
        assert credential_type(value) is None


def test_checksum_covers_the_type_prefix():
    """Re-labelling an access token as a refresh token (same body) is detected by the checksum."""
    access = fixed("at")
    assert not is_well_formed("rt_" + access[3:])


def test_one_megabyte_is_rejected_quickly():
    import time

    value = "at_" + "A" * (1024 * 1024)
    start = time.perf_counter()
    for _ in range(100):
        assert not is_well_formed(value)
    assert time.perf_counter() - start < 0.5  # a length check, not a scan


# -- mint() ------------------------------------------------------------------------------------------
def test_mint_is_unique_over_1000():
    values = [mint("at") for _ in range(1000)]
    assert len(set(values)) == 1000
    assert len({v[3 : 3 + RANDOM_LENGTH] for v in values}) == 1000


def test_mint_has_at_least_256_bits():
    assert RANDOM_LENGTH * math.log2(len(ALPHABET)) >= 256
    assert len(set(ALPHABET)) == 62


def test_mint_uses_the_whole_alphabet_roughly_evenly():
    """A crude bias check: 1000 credentials = 43,000 characters, ~694 per symbol expected."""
    counts = Counter("".join(mint("at")[3 : 3 + RANDOM_LENGTH] for _ in range(1000)))
    assert set(counts) == set(ALPHABET)
    assert min(counts.values()) > 450 and max(counts.values()) < 950


def test_mint_uses_the_os_csprng(monkeypatch):
    calls = []
    import secrets

    real_choice = secrets.choice

    def spy(seq):
        calls.append(1)
        return real_choice(seq)

    monkeypatch.setattr(credentials.secrets, "choice", spy)
    mint("at")
    assert len(calls) == RANDOM_LENGTH


@pytest.mark.parametrize("kind", ["", "AT", "a_t", "at-", "1at", "a" * 17, "at\n", "é"])
def test_mint_refuses_bad_types(kind):
    with pytest.raises(ValueError):
        mint(kind)


# -- hint() and digest() -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TYPES)
def test_hint_shows_only_type_and_last_four(kind):
    value = mint(kind)
    shown = hint(value)
    assert shown == f"{kind}_…{value[-4:]}"
    secret_part = value[len(kind) + 1 : -4]
    # No run of five or more characters of the credential other than the last four appears.
    assert not any(secret_part[i : i + 5] in shown for i in range(len(secret_part) - 4))
    assert len(shown) <= 16  # fits the model column


def test_digest_is_sha256_hex_and_one_way():
    value = fixed("at")
    d = digest(value)
    assert re.fullmatch(r"[0-9a-f]{64}", d)
    assert d == digest(value)
    assert d != digest(fixed("rt"))
    assert value[3:] not in d


def test_log_redaction_pattern_finds_every_type():
    for kind in TYPES:
        value = mint(kind)
        assert credentials.CREDENTIAL_PATTERN.search(f"Authorization: Bearer {value}.")
