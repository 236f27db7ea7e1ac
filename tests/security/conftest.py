"""Fixtures local to the attack suite."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def user(db: Any) -> Any:
    """Like the shared ``user`` fixture, without the Argon2 cost: these tests log in with
    ``force_login``, so the password is never checked (and is unusable)."""
    user = get_user_model()(username="alice")
    user.set_unusable_password()
    user.save()
    return user
