"""Protocol helpers for tests driving the Django test client."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from tests.conftest import basic_auth, pkce_pair
from tests.factories import REDIRECT_URI

TOKEN_URL = "/oauth/token"
INTROSPECT_URL = "/oauth/introspect"
REVOKE_URL = "/oauth/revoke"
AUTHORIZE_URL = "/oauth/authorize"
API = "/" + settings.API_PATH + "/"  # the management API's root: random per installation (AUTHSERVER_API_PATH)


def client_credentials(client: Any, client_obj: Any, secret: str, **extra: str) -> Any:
    return client.post(
        TOKEN_URL, {"grant_type": "client_credentials", **extra},
        HTTP_AUTHORIZATION=basic_auth(client_obj.client_id, secret),
    )


def introspect(client: Any, rs: Any, rs_secret: str, token: str, **extra: str) -> Any:
    return client.post(
        INTROSPECT_URL, {"token": token, **extra}, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret)
    )


def authorize(client: Any, app: Any, *, challenge: str, scope: str = "ai.infer", redirect_uri: str = REDIRECT_URI,
              state: str = "xyz", allow: bool = True, **extra: str) -> Any:
    """Drive the consent form (user already logged in on ``client``). Returns the final response."""
    params = {
        "response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }
    page = client.get(AUTHORIZE_URL, params)
    if page.status_code != 200 or "form" not in page.context:
        return page
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    if allow:
        form["allow"] = "Authorize"
    return client.post(AUTHORIZE_URL, form)


def code_from(response: Any) -> str:
    location = response["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def exchange_code(client: Any, app: Any, secret: str | None, code: str, verifier: str,
                  redirect_uri: str = REDIRECT_URI) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {}
    if secret:
        headers["HTTP_AUTHORIZATION"] = basic_auth(app.client_id, secret)
    else:
        data["client_id"] = app.client_id
    return client.post(TOKEN_URL, data, **headers)


def refresh(client: Any, app: Any, secret: str | None, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = {}
    if secret:
        headers["HTTP_AUTHORIZATION"] = basic_auth(app.client_id, secret)
    else:
        data["client_id"] = app.client_id
    return client.post(TOKEN_URL, data, **headers)


__all__ = ["pkce_pair"]


# -- Added for tests/security (attack and bad-input suite) ----------------------------------------

def authorize_params(app: Any, *, challenge: str, redirect_uri: str = REDIRECT_URI, scope: str = "ai.infer",
                     state: str = "xyz", **extra: str) -> dict[str, str]:
    """The query of a well-formed authorization request; ``extra`` overrides or adds parameters."""
    params = {
        "response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }
    return {k: v for k, v in params.items() if v is not None}


def obtain_code(client: Any, app: Any, **extra: str) -> tuple[str, str]:
    """A fresh authorization code and its PKCE verifier (user already logged in on ``client``)."""
    verifier, challenge = pkce_pair()
    response = authorize(client, app, challenge=challenge, **extra)
    assert response.status_code == 302, response.content
    return code_from(response), verifier


def obtain_tokens(client: Any, app: Any, secret: str | None, **extra: str) -> dict[str, Any]:
    """Access and refresh token from a full authorization-code exchange."""
    code, verifier = obtain_code(client, app, **extra)
    response = exchange_code(client, app, secret, code, verifier, redirect_uri=extra.get("redirect_uri", REDIRECT_URI))
    assert response.status_code == 200, response.content
    return response.json()


def location_query(response: Any) -> dict[str, list[str]]:
    """The query of a redirect's Location, parsed; {} if the response does not redirect."""
    location = response.get("Location")
    return parse_qs(urlsplit(location).query) if location else {}


def staff_login(http: Any, user: Any) -> Any:
    """Log ``user`` in on the Django test client ``http`` with a passed second factor, as the admin
    requires (authserver.staff): a confirmed TOTP device, the session verified by it just now."""
    import time

    from django_otp import DEVICE_ID_SESSION_KEY

    from authserver.staff.factor import SESSION_AT
    from authserver.staff.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test authenticator", confirmed=True)
    http.force_login(user)
    session = http.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[SESSION_AT] = int(time.time())
    session.save()
    return http
