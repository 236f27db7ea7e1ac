"""PKCE (RFC 7636; required for every client by OAuth 2.1 and RFC 9700 §2.1.1, S256 only)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from authserver.oauth.models import AccessToken, Grant
from tests.factories import REDIRECT_URI
from tests.helpers import (
    AUTHORIZE_URL,
    TOKEN_URL,
    authorize,
    authorize_params,
    basic_auth,
    exchange_code,
    location_query,
    obtain_code,
    pkce_pair,
)

pytestmark = pytest.mark.django_db


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# Authorization requests that must not yield a code. Each row: (overrides, expected error).
# ``None`` removes the parameter.
AUTHORIZE_REFUSED = [
    pytest.param({"code_challenge": None}, "invalid_request", id="missing-challenge"),
    pytest.param({"code_challenge": None, "code_challenge_method": None}, "invalid_request", id="no-pkce-at-all"),
    pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="method-plain"),
    pytest.param({"code_challenge_method": None}, "invalid_request", id="method-omitted-defaults-to-plain"),
    pytest.param({"code_challenge_method": "s256"}, "invalid_request", id="method-lowercase"),
    pytest.param({"code_challenge_method": "S512"}, "invalid_request", id="method-unknown"),
]


def _authorize_with(client, app, overrides):
    verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge=challenge)
    for key, value in overrides.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    page = client.get(AUTHORIZE_URL, params)
    if page.status_code == 200:  # consent shown: approve it, the refusal may come at code creation
        form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
        form["allow"] = "Authorize"
        return client.post(AUTHORIZE_URL, form)
    return page


@pytest.mark.parametrize(("overrides", "error"), AUTHORIZE_REFUSED)
def test_authorize_refuses_without_s256_pkce(client, web_client, user, overrides, error):
    app, _ = web_client
    client.force_login(user)
    response = _authorize_with(client, app, overrides)
    query = location_query(response)
    assert "code" not in query
    if response.status_code == 302:  # the error may go to the (verified) registered redirect URI
        assert response["Location"].startswith(REDIRECT_URI + "?")
        assert query["error"] == [error]
        assert query["state"] == ["xyz"]
    else:
        assert response.status_code == 400
    assert not Grant.objects.exists()


@pytest.mark.parametrize(("overrides", "error"), AUTHORIZE_REFUSED[:3])
def test_public_client_authorize_refuses_without_s256_pkce(client, native_client, user, overrides, error):
    app, _ = native_client
    client.force_login(user)
    overrides = {**overrides, "redirect_uri": "http://127.0.0.1/callback"}
    response = _authorize_with(client, app, overrides)
    assert "code" not in location_query(response)
    assert not Grant.objects.exists()


def _token_request(client, app, secret, code, verifier):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post(TOKEN_URL, data, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))


# Bad verifiers at the token endpoint. Each row builds the bad verifier from the right one.
BAD_VERIFIERS = [
    pytest.param(lambda right, other: "x" * 64, id="wrong"),
    pytest.param(lambda right, other: None, id="missing"),
    pytest.param(lambda right, other: "", id="empty"),
    pytest.param(lambda right, other: other, id="verifier-of-another-code"),
    pytest.param(lambda right, other: s256(right), id="the-challenge-itself"),
    pytest.param(lambda right, other: right[:-1], id="truncated"),
    pytest.param(lambda right, other: right + "A", id="extended"),
    pytest.param(lambda right, other: right.swapcase(), id="case-swapped"),
    pytest.param(lambda right, other: " " + right, id="leading-space"),
    pytest.param(lambda right, other: "a" * 1000, id="very-long"),
]


@pytest.mark.parametrize("make_bad", BAD_VERIFIERS)
def test_bad_verifier_is_invalid_grant_and_does_not_burn_the_code(client, web_client, user, make_bad):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    _other_code, other_verifier = obtain_code(client, app)

    bad = _token_request(client, app, secret, code, make_bad(verifier, other_verifier))
    assert bad.status_code == 400, bad.content
    assert bad.json()["error"] == "invalid_grant"
    assert "access_token" not in bad.json()
    assert not AccessToken.objects.exists()
    assert Grant.objects.get(code=code).used is None  # checked before the code was spent

    good = _token_request(client, app, secret, code, verifier)
    assert good.status_code == 200, good.content
    assert AccessToken.objects.count() == 1


def test_verifier_for_another_code_then_both_legitimate_exchanges_work(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    code_a, verifier_a = obtain_code(client, app)
    code_b, verifier_b = obtain_code(client, app)
    assert _token_request(client, app, secret, code_a, verifier_b).json()["error"] == "invalid_grant"
    assert _token_request(client, app, secret, code_b, verifier_a).json()["error"] == "invalid_grant"
    assert exchange_code(client, app, secret, code_a, verifier_a).status_code == 200
    assert exchange_code(client, app, secret, code_b, verifier_b).status_code == 200


def test_plain_challenge_cannot_be_satisfied_by_sending_the_challenge(client, web_client, user):
    """Even if a request slipped through with method=plain, the challenge is not a verifier."""
    app, secret = web_client
    client.force_login(user)
    verifier, challenge = pkce_pair()
    response = authorize(client, app, challenge=challenge, code_challenge_method="plain")
    assert "code" not in location_query(response)
    assert not Grant.objects.exists()
