"""Fixtures for the passkey tests: staff users, a software authenticator, and the ceremonies over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse

from authserver.audit.models import AuditEvent
from authserver.passkeys.models import PasskeyDevice
from tests.passkeys.authenticator import SoftAuthenticator

User = get_user_model()


def post_json(http: HttpClient, name: str, body: dict[str, Any] | None = None, *, next_url: str = "") -> Any:
    url = reverse(f"passkeys:{name}") + (f"?next={next_url}" if next_url else "")
    return http.post(url, json.dumps(body or {}), content_type="application/json")


def enrol(http: HttpClient, auth: SoftAuthenticator, **lies: Any) -> Any:
    """Run the registration ceremony on ``http``; ``lies`` go to the authenticator (origin, rp_id, uv)."""
    options = post_json(http, "enrol-options")
    assert options.status_code == 200, options.content
    return post_json(http, "enrol-complete", {"credential": auth.create(options.json(), **lies), "name": "Laptop"})


def verify(http: HttpClient, auth: SoftAuthenticator, *, next_url: str = "", **lies: Any) -> Any:
    """Run the authentication ceremony on ``http``; ``lies`` go to the authenticator."""
    options = post_json(http, "verify-options")
    assert options.status_code == 200, options.content
    return post_json(http, "verify-complete", {"credential": auth.get(options.json(), **lies)}, next_url=next_url)


def password_only(user: Any) -> HttpClient:
    """A session after the password step and before any second factor."""
    http = HttpClient()
    http.force_login(user)
    return http


def events(name: str, **filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name, **filters).order_by("id"))


def verified(http: HttpClient) -> bool:
    """``request.user.is_verified()`` as the next request on this session sees it (OTPMiddleware)."""
    response = http.get(reverse("passkeys:list"))
    return bool(response.wsgi_request.user.is_verified())


@pytest.fixture
def staff(db: Any) -> Any:
    return User.objects.create_user("staff", "staff@example.test", "x-unused-password-x", is_staff=True)


@pytest.fixture
def other_staff(db: Any) -> Any:
    return User.objects.create_user("other", "other@example.test", "x-unused-password-x", is_staff=True)


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def enrolled(staff: Any, authenticator: SoftAuthenticator) -> PasskeyDevice:
    """``staff`` with one passkey on ``authenticator``, enrolled over HTTP in a session since closed."""
    response = enrol(password_only(staff), authenticator)
    assert response.status_code == 200, response.content
    return PasskeyDevice.objects.get(user=staff)
