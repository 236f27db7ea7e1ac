"""keys.usability and authserver.oauth.usability: the one rule for "usable now", as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authserver.oauth.usability import access_token_usable, before_client_cutoff
from keys.models import ApiKey, ApiKeyStatus
from keys.usability import ACTIVE, api_key_end, api_key_usable_until

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
CREATED = NOW - 24 * HOUR


def test_active_matches_the_model():
    assert ACTIVE == ApiKeyStatus.ACTIVE


@pytest.mark.parametrize(
    ("expires", "grace_ends", "end"),
    [(NOW + HOUR, None, NOW + HOUR), (NOW + HOUR, NOW + 2 * HOUR, NOW + HOUR), (NOW + HOUR, NOW, NOW)],
)
def test_api_key_end(expires, grace_ends, end):
    assert api_key_end(expires=expires, grace_ends=grace_ends) == end
    assert ApiKey(expires=expires, grace_ends=grace_ends).end == end


@pytest.mark.parametrize(
    ("status", "expires", "grace_ends", "cutoff", "until"),
    [
        (ApiKeyStatus.ACTIVE, NOW + HOUR, None, None, NOW + HOUR),
        (ApiKeyStatus.ACTIVE, NOW + HOUR, NOW + 60 * HOUR, None, NOW + HOUR),
        (ApiKeyStatus.ACTIVE, NOW + HOUR, NOW + timedelta(minutes=5), None, NOW + timedelta(minutes=5)),
        (ApiKeyStatus.ACTIVE, NOW + HOUR, None, CREATED - HOUR, NOW + HOUR),  # cut-off before creation
        (ApiKeyStatus.ACTIVE, NOW + HOUR, None, CREATED, None),  # created at the cut-off: revoked
        (ApiKeyStatus.ACTIVE, NOW + HOUR, None, NOW, None),
        (ApiKeyStatus.ACTIVE, NOW, None, None, None),  # expiring now is expired
        (ApiKeyStatus.ACTIVE, NOW + HOUR, NOW, None, None),  # grace ending now has ended
        (ApiKeyStatus.SUSPENDED, NOW + HOUR, None, None, None),
        (ApiKeyStatus.REVOKED, NOW + HOUR, None, None, None),
        (ApiKeyStatus.EXPIRED, NOW + HOUR, None, None, None),
    ],
)
def test_api_key_usable_until(status, expires, grace_ends, cutoff, until):
    got = api_key_usable_until(status=status, expires=expires, grace_ends=grace_ends, created=CREATED,
                               client_cutoff=cutoff, now=NOW)
    assert got == until
    key = ApiKey(status=status, expires=expires, grace_ends=grace_ends, created=CREATED)
    assert key.usable_until(client_cutoff=cutoff, now=NOW) == until


@pytest.mark.parametrize(
    ("expires", "cutoff", "usable"),
    [
        (NOW + HOUR, None, True),
        (NOW, None, False),
        (NOW - HOUR, None, False),
        (NOW + HOUR, CREATED - timedelta(microseconds=1), True),
        (NOW + HOUR, CREATED, False),
        (NOW + HOUR, NOW, False),
    ],
)
def test_access_token_usable(expires, cutoff, usable):
    assert access_token_usable(expires=expires, created=CREATED, client_cutoff=cutoff, now=NOW) is usable
    assert before_client_cutoff(created=CREATED, client_cutoff=cutoff) is (cutoff is not None and CREATED <= cutoff)
