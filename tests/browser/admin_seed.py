"""One of (nearly) everything the admin shows, for the tests that walk every admin page
(test_admin_readable, test_admin_names)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from authserver import credentials
from authserver.anomaly.models import Baseline, Signal
from authserver.anomaly.services import anomaly_record
from authserver.oauth.models import AccessToken, Grant, IDToken, RefreshToken
from authserver.staff.models import PasswordChangeRequired
from clients.services import client_register, scope_create
from keys.models import CompromiseResponse
from keys.services import api_key_create
from tests.factories import REDIRECT_URI, RS_AUDIENCE

LONG_NAME = "Acme Corporation machine-learning inference gateway for the European production region (primary)"


def seed_admin_data() -> dict[str, Any]:
    """Clients, a scope, tokens, a code, an ID token, a key, an anomaly, a baseline, audit events."""
    scope_create(name="ai.infer", description="Run inference", actor="test")
    rs, _ = client_register(name="Inference API", client_type="confidential", grant_types=[],
                            resource_server_audience=RS_AUDIENCE, actor="test")
    web, _ = client_register(name=LONG_NAME, client_type="confidential", grant_types=["authorization_code"],
                             redirect_uris=[REDIRECT_URI], scopes=["ai.infer"], audiences=[RS_AUDIENCE], actor="test")
    user = get_user_model().objects.create_user("alice", "alice@example.test", "x-unused-password-x")
    now = timezone.now()
    at_value = credentials.mint(credentials.ACCESS_TOKEN)
    access = AccessToken.objects.create(user=user, application=web, token=at_value, expires=now + timedelta(hours=1),
                                        scope="ai.infer", resource=[RS_AUDIENCE], hint=credentials.hint(at_value))
    rt_value = credentials.mint(credentials.REFRESH_TOKEN)
    RefreshToken.objects.create(user=user, application=web, token=rt_value, access_token=access,
                                family_expires=now + timedelta(days=30), hint=credentials.hint(rt_value))
    Grant.objects.create(user=user, application=web, code=credentials.mint(credentials.AUTHORIZATION_CODE),
                         expires=now + timedelta(minutes=1), redirect_uri=REDIRECT_URI, scope="ai.infer",
                         code_challenge="x" * 43, code_challenge_method="S256")
    IDToken.objects.create(user=user, application=web, expires=now + timedelta(hours=1), scope="openid")
    key, _ = api_key_create(client=web, name="billing-service production", actor="test")
    minute = now.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    anomaly_record(signal=Signal.VOLUME, subject=f"key:{key.pk}", minute=minute, series=f"key:{key.pk}",
                   evidence={"count": 4812, "threshold": 900, "minute": minute.isoformat(),
                             "latest": {"count": 5120, "inactive_answers": 0}})
    Baseline.objects.create(subject=f"client:{web.client_id}", client=web, samples=1440, mean=12.5, high=40,
                            computed_limit=120, effective_limit=120,
                            history=[[int(minute.timestamp()), 120, 40.0, "learned"]])
    PasswordChangeRequired.objects.create(user=user)
    CompromiseResponse.objects.create(client=web, requested_by="root")
    return {"rs": rs, "web": web, "key": key, "user": user}
