"""Issue 12 items 9, 10 and 11 as fuzz checks: the authorization request validated before consent,
the client's own scheme in a 401's challenge, 405 with Allow for an undocumented method.

Written as strict xfails against the code before those items were fixed (each one failed then),
now plain tests.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.factories import REDIRECT_URI
from tests.fuzz.oauth_cases import with_real_values
from tests.fuzz.wsgi import fuzz_operation
from tests.helpers import AUTHORIZE_URL, INTROSPECT_URL, REVOKE_URL, TOKEN_URL

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # RFC 7636 §4.2: base64url of a SHA-256, unpadded
MACHINE = {TOKEN_URL, INTROSPECT_URL, REVOKE_URL}


# -- Item 10: a 401 to a Basic-authenticated client challenges with Basic (RFC 6749 §5.2) ---------

@pytest.mark.parametrize("path", [TOKEN_URL, REVOKE_URL, INTROSPECT_URL])
def test_basic_client_gets_a_basic_challenge(oauth_schema: Any, world: dict[str, Any], path: str) -> None:
    operation = oauth_schema[path]["post"].definition.raw["operationId"]

    def call(case: Any) -> None:
        headers, cookies = with_real_values(case, world, operation)
        response = case.call(headers=headers, cookies=cookies)
        sent = response.request.headers.get("Authorization", "")
        if response.status_code == 401 and sent.lower().startswith("basic "):
            challenge = response.headers.get("www-authenticate", [""])[0]
            assert challenge.lower().startswith("basic"), (sent[:12], challenge)

    fuzz_operation(oauth_schema, "post", path, max_examples=20, call=call)


# -- Item 9: the whole authorization request is validated before the consent page ---------------

@settings(max_examples=40)
@given(challenge=st.text(st.characters(codec="ascii"), max_size=130))
@example(challenge="A" * 42)
@example(challenge="A" * 129)
@example(challenge="+/=" * 14 + "A")
def test_consent_page_only_for_a_well_formed_challenge(client: Any, web_client: Any, user: Any,
                                                       challenge: str) -> None:
    client.force_login(user)
    app, _ = web_client
    response = client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI, "scope": "ai.infer",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    if response.status_code == 200:
        assert S256_CHALLENGE.fullmatch(challenge), challenge


# -- Item 11: an undocumented method is a 405 with Allow; machine endpoints answer JSON ------------

# Every one of them answered otherwise before item 11: machine endpoints a 405 in HTML without
# no-store, /oauth/authorize a redirect to the login page (403 CSRF when signed in), the metadata
# URL 403 (CSRF).
METHODS_CASES = [(method, path, allowed) for path, allowed in [
    (TOKEN_URL, "POST"), (INTROSPECT_URL, "POST"), (REVOKE_URL, "POST"), (AUTHORIZE_URL, "GET, POST"),
    ("/.well-known/oauth-authorization-server", "GET")] for method in ("GET", "POST", "PUT", "DELETE", "PATCH")
    if method not in allowed]


@pytest.mark.parametrize(("method", "path"), [pytest.param(method, path, id=f"{method} {path}")
                                             for method, path, _ in METHODS_CASES])
def test_undocumented_method_is_405_with_allow(method: str, path: str) -> None:
    response = Client(enforce_csrf_checks=True).generic(method, path)  # CSRF enforced, as for a real caller
    assert response.status_code == 405, response.status_code
    assert response.get("Allow")
    if path in MACHINE:
        assert response["Content-Type"].startswith("application/json")
        assert "no-store" in response.get("Cache-Control", "")
