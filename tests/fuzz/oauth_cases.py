"""What the OAuth fuzz tests share: the document, a world of real clients and credentials, and
how a drawn case is given some of them.

Random values reach little beyond "unknown client": a share of the cases (chosen by a checksum of
the drawn case, so the choice is part of the example and reproducible) is given real credentials:
HTTP Basic or body credentials of a registered client (or its id with a wrong secret), a live
access token, refresh token or API key, the registered redirect URI, a signed-in user's session and its CSRF token; another share
gets a control character in one field.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings

from authserver import credentials
from clients.resource_paths.services import resource_paths_update
from keys.services import api_key_create
from tests.conftest import basic_auth
from tests.factories import REDIRECT_URI, RS_AUDIENCE, UserFactory, make_client, make_resource_server
from tests.helpers import client_credentials, obtain_tokens

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi-oauth.yaml"


def make_world(client: Any) -> dict[str, Any]:
    """Registered clients, live credentials of each kind, and a signed-in user's cookies."""
    service, service_secret = make_client(name="service", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    web, web_secret = make_client(name="web", grant_types=["authorization_code"],
                                  redirect_uris=[REDIRECT_URI], scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    rs, rs_secret = make_resource_server()
    resource_paths_update(client=rs, rotating_paths=True, public_url="https://chat.example.test/v1", actor="test")
    user = UserFactory(username="fuzz")
    client.force_login(user)
    tokens = obtain_tokens(client, web, web_secret)
    access = client_credentials(client, service, service_secret).json()["access_token"]
    _, api_key = api_key_create(client=service, name="fuzz", actor="test")
    client.get("/oauth/authorize")  # sets the CSRF cookie
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    return {
        "basic": {"token": basic_auth(service.client_id, service_secret),
                  "introspect": basic_auth(rs.client_id, rs_secret), "revoke": basic_auth(web.client_id, web_secret),
                  "pathKey": basic_auth(rs.client_id, rs_secret)},
        "wrong_basic": basic_auth(service.client_id, credentials.mint(credentials.CLIENT_SECRET)),
        "body_auth": {"token": (service.client_id, service_secret), "introspect": (rs.client_id, rs_secret),
                      "revoke": (web.client_id, web_secret), "pathKey": (rs.client_id, rs_secret)},
        "tokens": [access, tokens["access_token"], tokens["refresh_token"], api_key],
        "refresh_token": tokens["refresh_token"], "api_key": api_key, "web": web.client_id, "cookies": cookies,
        "csrf": cookies.get(django_settings.CSRF_COOKIE_NAME, ""),
    }


def choice(case: Any, ways: int) -> int:
    """0..ways-1 from a checksum of what was drawn: part of the example, unlike a random draw."""
    drawn = repr((case.body, case.query, case.headers)).encode("utf-8", "backslashreplace")
    return zlib.crc32(drawn) % ways


def with_real_values(case: Any, world: dict[str, Any], operation: str) -> tuple[dict[str, str], dict[str, str]]:
    """Real credentials and values in a share of the cases; the extra headers and cookies to send."""
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    share = choice(case, 4)
    body = case.body if isinstance(case.body, dict) else None
    if operation in world["basic"]:
        if share == 1:
            headers["Authorization"] = world["basic"][operation]
        elif share == 3:  # a registered client with a wrong secret, in one place only
            headers["Authorization"] = world["wrong_basic"]
            for name in ("client_id", "client_secret"):
                (body or {}).pop(name, None)
        elif share == 2 and body is not None:
            body["client_id"], body["client_secret"] = world["body_auth"][operation]
        if body is not None and share in (1, 2):
            if "token" in body:
                body["token"] = world["tokens"][choice(case, len(world["tokens"]))]
            if "refresh_token" in body:
                body["refresh_token"] = world["refresh_token"]
            if "subject_token" in body:
                body["subject_token"] = world["api_key"]
    elif operation == "discovery":
        if share in (1, 2):  # a live access token or API key; for the registered audience in half of those
            headers["Authorization"] = "Bearer " + world["tokens"][(0, 3)[share - 1]]
        if share == 2 and isinstance(case.query, dict):
            case.query["audience"] = RS_AUDIENCE
    elif operation == "authorize":
        if share in (1, 2):
            cookies = world["cookies"]
        if share == 2 and isinstance(case.query, dict):
            case.query.update(client_id=world["web"], redirect_uri=REDIRECT_URI)
    elif operation == "consent":
        if share != 0:
            cookies = world["cookies"]
            headers["X-CSRFToken"] = world["csrf"]
        if share == 2 and body is not None:
            body.update(client_id=world["web"], redirect_uri=REDIRECT_URI)
    if choice(case, 5) == 4:
        inject_control_character(case)
    return headers, cookies


def inject_control_character(case: Any) -> None:
    """A NUL (or another C0 control) in one field: no OAuth parameter may carry one (RFC 6749
    Appendix A), and PostgreSQL cannot store one; schemathesis's negative data rarely has it."""
    fields = case.body if isinstance(case.body, dict) else case.query if isinstance(case.query, dict) else None
    if not fields:
        return
    names = sorted(fields)
    name = names[choice(case, len(names))]
    fields[name] = f"{fields[name]}{chr(choice(case, 3) * 9)}x"  # \x00, \t or \x12


