"""Issue 12, item 15: explicit operator limits win over learned ones; the learned limit shows.

A new client or key starts at the learned default (600/min) and that used to win over an explicit
``token.client`` setting and over a key's own rate limit. Learned limits now apply only where the
operator set none; an anomaly's action or a pin still binds; the limit that applies is in the
RateLimit fields.
"""

from __future__ import annotations

import pytest

from authserver import counters
from authserver.anomaly.services import baseline_for, limit_pin, limits_publish
from keys.services import api_key_create
from tests.helpers import client_credentials, introspect, staff_login

pytestmark = pytest.mark.django_db


def _learn(subject: str, per_minute: int) -> None:
    """What the anomaly job does for a credential it has learned ``per_minute`` for."""
    baseline = baseline_for(subject)
    baseline.effective_limit = per_minute
    baseline.save(update_fields=["effective_limit"])
    limits_publish([baseline])


def test_an_explicit_token_client_limit_wins_over_the_learned_one(client, service_client, anomaly_settings):
    anomaly_settings.RATE_LIMITS = {**anomaly_settings.RATE_LIMITS, "token.client": ("1000/60", "local")}
    app, secret = service_client
    _learn(f"client:{app.client_id}", 2)
    responses = [client_credentials(client, app, secret) for _ in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    assert '"token.client";q=1000;w=60' in responses[-1]["RateLimit-Policy"]


def test_the_learned_limit_applies_without_one_and_shows_in_the_ratelimit_fields(client, service_client,
                                                                                    anomaly_settings):
    app, secret = service_client
    _learn(f"client:{app.client_id}", 2)
    responses = [client_credentials(client, app, secret) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert '"token.client";q=2;w=60' in responses[0]["RateLimit-Policy"]
    assert '"token.client";q=2;w=60' in responses[2]["RateLimit-Policy"]


def test_a_pin_binds_over_an_explicit_policy(client, service_client, anomaly_settings):
    anomaly_settings.RATE_LIMITS = {**anomaly_settings.RATE_LIMITS, "token.client": ("1000/60", "local")}
    app, secret = service_client
    limit_pin(subject=f"client:{app.client_id}", limit=1, actor="test")
    assert [client_credentials(client, app, secret).status_code for _ in range(2)] == [200, 429]


def _key_answers(client, owner, resource_server, *, rate_limit, learned, pin=None, n=4):
    rs, rs_secret = resource_server
    key, plaintext = api_key_create(client=owner, name="k", rate_limit=rate_limit)
    _learn(f"key:{key.pk}", learned)
    if pin:
        limit_pin(subject=f"key:{key.pk}", limit=pin, actor="test")
    return [introspect(client, rs, rs_secret, plaintext).json() for _ in range(n)]


def test_a_keys_own_rate_limit_wins_over_the_learned_one(client, owner, resource_server, anomaly_settings):
    answers = _key_answers(client, owner, resource_server, rate_limit=(1000, 60), learned=2)
    assert all(a["active"] for a in answers)
    assert answers[-1]["rate_limit"]["limit"] == 1000


def test_a_key_without_a_limit_follows_the_learned_one(client, owner, resource_server, anomaly_settings):
    answers = _key_answers(client, owner, resource_server, rate_limit=None, learned=2, n=3)
    assert [a["active"] for a in answers] == [True, True, False]
    assert answers[-1]["rate_limited"] is True and answers[0]["rate_limit"]["limit"] == 2


def test_a_pin_binds_over_a_keys_own_limit(client, owner, resource_server, anomaly_settings):
    answers = _key_answers(client, owner, resource_server, rate_limit=(1000, 60), learned=600, pin=2, n=3)
    assert [a["active"] for a in answers] == [True, True, False]


def test_the_published_sign_says_what_binds():
    assert counters.applicable_limit(None, operator_set=False) is None
    assert counters.applicable_limit(600, operator_set=False) == 600
    assert counters.applicable_limit(600, operator_set=True) is None, "learned: the operator's limit wins"
    assert counters.applicable_limit(-5, operator_set=True) == 5, "an action or a pin binds"


# -- The admin shows the learned limit and whether it applies ------------------------------------------
def test_the_client_admin_shows_the_learned_limit(client, admin_user, service_client, anomaly_settings, settings):
    app, _ = service_client
    _learn(f"client:{app.client_id}", 600)
    staff_login(client, admin_user)
    page = client.get(f"/{settings.ADMIN_PATH}/clients/client/{app.pk}/change/")
    assert b"600/min learned (applies)" in page.content
    assert b"600/min learned" in client.get(f"/{settings.ADMIN_PATH}/clients/client/").content
    anomaly_settings.RATE_LIMITS = {**anomaly_settings.RATE_LIMITS, "token.client": ("1000/60", "local")}
    page = client.get(f"/{settings.ADMIN_PATH}/clients/client/{app.pk}/change/")
    assert b"not applied: the operator&#x27;s token.client 1000/60s wins" in page.content


def test_the_key_admin_shows_the_learned_limit(client, admin_user, owner, anomaly_settings, settings):
    key, _ = api_key_create(client=owner, name="k", rate_limit=(1000, 60))
    _learn(f"key:{key.pk}", 600)
    staff_login(client, admin_user)
    page = client.get(f"/{settings.ADMIN_PATH}/keys/apikey/{key.pk}/change/")
    assert b"600/min learned (not applied" in page.content
    assert b"600/min learned" in client.get(f"/{settings.ADMIN_PATH}/keys/apikey/").content
    limit_pin(subject=f"key:{key.pk}", limit=5, actor="test")
    assert b"5/min (pinned or an anomaly&#x27;s action: applies)" in client.get(f"/{settings.ADMIN_PATH}/keys/apikey/{key.pk}/change/").content
