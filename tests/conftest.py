"""Shared fixtures.

Every credential the suite mints is also recorded (``issued_credentials``) so that
``tests/security/test_no_plaintext.py`` can prove none of them reached the database or the logs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from typing import Any

import pytest

from authserver import credentials, events
from tests.factories import REDIRECT_URI, RS_AUDIENCE, UserFactory, make_client, make_resource_server

ISSUED: list[str] = []
_original_mint = credentials.mint


def _recording_mint(kind: str) -> str:
    value = _original_mint(kind)
    ISSUED.append(value)
    return value


credentials.mint = _recording_mint  # every credential minted in this session is remembered


def _recording_webhook_secret() -> str:
    value = _original_webhook_secret()
    ISSUED.append(value)  # whsec_ secrets are not in the credential format; the leak check covers them too
    return value


from clients.webhooks import signing as _webhook_signing  # noqa: E402 - after the mint hook, like it

_original_webhook_secret = _webhook_signing.mint_secret
_webhook_signing.mint_secret = _recording_webhook_secret

from clients.resource_paths import models as _resource_paths  # noqa: E402 - after the mint hook, like it

_original_path_key = _resource_paths.mint_path_key


def _recording_path_key() -> str:
    value = _original_path_key()
    ISSUED.append(value)  # path keys (base64url) are not in the credential format; the leak check covers them too
    return value


_resource_paths.mint_path_key = _recording_path_key

from authserver.oauth.device import user_codes as _user_codes  # noqa: E402 - after the mint hook, like it

_original_user_code = _user_codes.generate
USER_CODES: list[str] = []  # every RFC 8628 user code of the session (XXXX-XXXX), for the leak check


def _recording_user_code() -> str:
    value = _original_user_code()
    USER_CODES.append(value)
    return value


_user_codes.generate = _recording_user_code

TOTP_SEEDS: list[str] = []  # every authenticator seed of the session (hex), for the leak check


def _record_totp_seeds() -> None:
    from authserver.staff.models import TOTPDevice

    seed_field = TOTPDevice._meta.get_field("key")
    original = seed_field.default

    def recording_seed() -> str:
        value = original()
        TOTP_SEEDS.append(value)
        return value

    seed_field.default = recording_seed


_record_totp_seeds()


@pytest.fixture(autouse=True)
def _fresh_process_caches(request: Any) -> Any:
    """No test sees another's in-process caches, revocation generation, counters or rate limits."""
    from authserver import counters, revocation
    from authserver.ratelimit import limiter

    revocation.clear_caches()
    revocation.reset_for_tests()
    counters.reset_for_tests()
    limiter.reset_for_tests()
    counters.wipe_for_tests()
    yield
    counters.reset_for_tests()


@pytest.fixture(autouse=True)
def _fresh_audit_checkpoint_file() -> Any:
    """No test sees another's audit checkpoint file: the file outlives the test's rolled-back
    database, and a later test's ``audit verify`` would rightly report its trail as cut behind it."""
    from authserver.audit.checkpoints import checkpoint_path

    path = checkpoint_path()
    path.unlink(missing_ok=True)
    yield
    path.unlink(missing_ok=True)


@pytest.fixture
def issued_credentials() -> list[str]:
    return ISSUED


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture
def resource_server(db: Any) -> tuple[Any, str]:
    return make_resource_server()


@pytest.fixture
def service_client(db: Any) -> tuple[Any, str]:
    return make_client(name="inference service", scopes=["ai.infer", "ai.admin"])


@pytest.fixture
def web_client(db: Any) -> tuple[Any, str]:
    return make_client(
        name="web app", grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI], scopes=["ai.infer"],
    )


@pytest.fixture
def user(db: Any) -> Any:
    return UserFactory(username="alice")


__all__ = ["RS_AUDIENCE", "REDIRECT_URI", "basic_auth", "pkce_pair"]


# -- Added for tests/security (attack and bad-input suite) ----------------------------------------
OTHER_RS_AUDIENCE = "https://other-api.example.test"
LOOPBACK_REDIRECT_URI = "http://127.0.0.1/callback"


@pytest.fixture
def other_web_client(db: Any) -> tuple[Any, str]:
    """A second confidential client registered with the very same redirect URI as ``web_client``."""
    return make_client(
        name="other web app", grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI], scopes=["ai.infer"],
    )


@pytest.fixture
def native_client(db: Any) -> tuple[Any, None]:
    """A public (native) client with a loopback redirect URI (RFC 8252 §7.3)."""
    return make_client(
        name="native app", client_type="public", grant_types=["authorization_code"],
        redirect_uris=[LOOPBACK_REDIRECT_URI], scopes=["ai.infer"],
    )


@pytest.fixture
def other_resource_server(db: Any) -> tuple[Any, str]:
    return make_resource_server(OTHER_RS_AUDIENCE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that would test the same thing in both CI passes run in one:

    - ``once`` tests bring their own throwaway services, or are slow end-to-end tests whose point is
      the production storage (the resource-server kit and the revocation stream against PostgreSQL
      and Redis): the PostgreSQL pass only;
    - ``browser`` tests (headless Chromium) test what pages show and do, which the storage behind them
      doesn't change: the embedded pass only, the setup ``uv run manage.py serve`` gives a new user.
      The pages' server-side behaviour is also tested with Django's test client, in both passes.
    """
    postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    once = pytest.mark.skip(reason="runs once, in the PostgreSQL pass (own services, or production storage)")
    browser = pytest.mark.skip(reason="a headless-Chromium page test: runs once, in the embedded pass")
    for item in items:
        if not postgres and item.get_closest_marker("once") is not None:
            item.add_marker(once)
        if postgres and item.get_closest_marker("browser") is not None:
            item.add_marker(browser)


def pytest_unconfigure(config: pytest.Config) -> None:
    # Access lines still pending at exit would be written to pytest's capture files, closed by then.
    events.discard_all_for_tests()
