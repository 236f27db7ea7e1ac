"""Dynamic registration on, with a registrable scope and resource server (clients.registration)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authserver.audit.models import AuditEvent
from clients.models import Client
from clients.registration.models import InitialAccessToken, Registration
from tests.factories import RS_AUDIENCE, ScopeFactory

REGISTER = "/oauth/register"
NATIVE = "http://127.0.0.1/callback"
GOOD: dict[str, Any] = {"client_name": "Agent", "redirect_uris": [NATIVE], "grant_types": ["authorization_code",
                        "refresh_token"], "response_types": ["code"], "token_endpoint_auth_method": "none"}


@pytest.fixture
def dcr(settings: Any, db: Any) -> Any:
    settings.DCR = "open"
    settings.REGISTRABLE_SCOPES = ["ai.infer"]
    settings.REGISTRABLE_AUDIENCES = [RS_AUDIENCE]
    ScopeFactory(name="ai.infer")
    ScopeFactory(name="ai.admin")  # exists, but not registrable
    return settings


def post(http: Any, body: Any, *, token: str | None = None, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return http.generic("POST", REGISTER, raw, content_type=content_type, **extra)


def counts() -> tuple[int, int, int]:
    return Client.objects.count(), Registration.objects.count(), sum(
        InitialAccessToken.objects.values_list("uses", flat=True))


def last_event(name: str) -> AuditEvent:
    event = AuditEvent.objects.filter(event=name).order_by("-id").first()
    assert event is not None, f"no {name} event"
    return event
