"""schemathesis against docs/openapi-oauth.yaml and the live WSGI application.

Authorize (anonymous and signed in), consent, token (every grant), introspection, revocation and
metadata, with positive and negative data: no 5xx, and every answer is one the document declares
(status code, content type, JSON body), so the document stays true.

Random values reach little beyond "unknown client": a share of the cases (chosen by a checksum of
the drawn case, so the choice is part of the example and reproducible) is given real credentials:
HTTP Basic or body credentials of a registered client, a live access token, refresh token or API
key, the registered redirect URI, a signed-in user's session and its CSRF token.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.conf import settings as django_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keys.services import api_key_create
from tests.conftest import basic_auth, pkce_pair
from tests.factories import REDIRECT_URI, RS_AUDIENCE, UserFactory, make_client, make_resource_server
from tests.fuzz.wsgi import fuzz_operation, generous_rate_limits, wsgi_application
from tests.helpers import client_credentials, obtain_tokens

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi-oauth.yaml"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 60  # per operation
OPERATIONS = sorted((method, path) for path, ops in yaml.safe_load(DOCUMENT.read_text())["paths"].items()
                    for method in ops)
# Known 500s that issue 12 item 8 fixes (another change of the same issue): the consent POST of a
# form that does not verify (an unknown client_id; a NUL in state; an empty redirect_uri)
# renders the template without `application`. Strict: once fixed, this marker must go.
KNOWN = {("post", "/oauth/authorize"): pytest.mark.xfail(
    strict=True, reason="issue 12 item 8: consent POST with an unverifiable form answers 500 (VariableDoesNotExist)")}


@pytest.fixture
def world(client: Any) -> dict[str, Any]:
    """Registered clients, live credentials of each kind, and a signed-in user's cookies."""
    service, service_secret = make_client(name="service", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    web, web_secret = make_client(name="web", grant_types=["authorization_code"],
                                  redirect_uris=[REDIRECT_URI], scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    rs, rs_secret = make_resource_server()
    user = UserFactory(username="fuzz")
    client.force_login(user)
    tokens = obtain_tokens(client, web, web_secret)
    access = client_credentials(client, service, service_secret).json()["access_token"]
    _, api_key = api_key_create(client=service, name="fuzz", actor="test")
    client.get("/oauth/authorize")  # sets the CSRF cookie
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    _, challenge = pkce_pair()
    return {
        "basic": {"token": basic_auth(service.client_id, service_secret),
                  "introspect": basic_auth(rs.client_id, rs_secret), "revoke": basic_auth(web.client_id, web_secret)},
        "body_auth": {"token": (service.client_id, service_secret), "introspect": (rs.client_id, rs_secret),
                      "revoke": (web.client_id, web_secret)},
        "tokens": [access, tokens["access_token"], tokens["refresh_token"], api_key],
        "refresh_token": tokens["refresh_token"], "api_key": api_key, "web": web.client_id, "challenge": challenge,
        "cookies": cookies,
        "csrf": cookies.get(django_settings.CSRF_COOKIE_NAME, ""),
    }


@pytest.fixture
def oauth_schema(world: dict[str, Any], settings: Any) -> Iterator[Any]:
    """After ``world``: the test client it uses reconnects the request signals when it is done."""
    generous_rate_limits(settings)
    with wsgi_application() as app:
        schema = schemathesis.openapi.from_path(str(DOCUMENT))
        schema.app = app
        yield schema


def _choice(case: Any, ways: int) -> int:
    drawn = repr((case.body, case.query, case.headers)).encode("utf-8", "backslashreplace")
    return zlib.crc32(drawn) % ways


def _with_real_values(case: Any, world: dict[str, Any], operation: str) -> tuple[dict[str, str], dict[str, str]]:
    """Real credentials and values in a share of the cases; the extra headers and cookies to send."""
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    choice = _choice(case, 4)
    body = case.body if isinstance(case.body, dict) else None
    if operation in world["basic"]:
        if choice == 1:
            headers["Authorization"] = world["basic"][operation]
        elif choice == 2 and body is not None:
            body["client_id"], body["client_secret"] = world["body_auth"][operation]
        if body is not None and choice in (1, 2):
            if "token" in body:
                body["token"] = world["tokens"][_choice(case, len(world["tokens"]))]
            if "refresh_token" in body:
                body["refresh_token"] = world["refresh_token"]
            if "subject_token" in body:
                body["subject_token"] = world["api_key"]
    elif operation == "authorize":
        if choice in (1, 2):
            cookies = world["cookies"]
        if choice == 2 and isinstance(case.query, dict):
            case.query.update(client_id=world["web"], redirect_uri=REDIRECT_URI)
    elif operation == "consent":
        if choice != 0:
            cookies = world["cookies"]
            headers["X-CSRFToken"] = world["csrf"]
        if choice == 2 and body is not None:
            body.update(client_id=world["web"], redirect_uri=REDIRECT_URI)
    if _choice(case, 5) == 4:
        _inject_control_character(case)
    return headers, cookies


def _inject_control_character(case: Any) -> None:
    """A NUL (or another C0 control) in one field: no OAuth parameter may carry one (RFC 6749
    Appendix A), and PostgreSQL cannot store one; schemathesis's negative data rarely has it."""
    fields = case.body if isinstance(case.body, dict) else case.query if isinstance(case.query, dict) else None
    if not fields:
        return
    names = sorted(fields)
    name = names[_choice(case, len(names))]
    fields[name] = f"{fields[name]}{chr(_choice(case, 3) * 9)}x"  # \x00, \t or \x12


@pytest.mark.parametrize(("method", "path"), [pytest.param(*op, marks=KNOWN.get(op, ())) for op in OPERATIONS])
def test_oauth_endpoint(oauth_schema: Any, world: dict[str, Any], method: str, path: str) -> None:
    operation = oauth_schema[path][method].definition.raw["operationId"]

    def call(case: Any) -> None:
        headers, cookies = _with_real_values(case, world, operation)
        case.call_and_validate(headers=headers, cookies=cookies, checks=CHECKS)

    fuzz_operation(oauth_schema, method, path, max_examples=MAX_EXAMPLES, call=call)


def test_every_endpoint_is_described() -> None:
    assert {path for _, path in OPERATIONS} == {"/oauth/authorize", "/oauth/token", "/oauth/introspect",
                                                "/oauth/revoke", "/.well-known/oauth-authorization-server"}
