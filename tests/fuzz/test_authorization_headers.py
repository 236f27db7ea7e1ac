"""Any ``Authorization`` header at the management API and the introspection endpoint: an
authentication refusal (401, or 400 for a malformed request), never a 5xx. Both passes: the
requests go through the Django test client and the whole middleware stack."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authserver import credentials
from tests.fuzz.wsgi import generous_rate_limits
from tests.helpers import API, INTROSPECT_URL, REVOKE_URL, TOKEN_URL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_failure_budget(settings: Any) -> None:
    generous_rate_limits(settings)  # else 429 after the failure budget: the parsers are what is under test

# Header values as WSGI carries them: latin-1 text.
HEADER = st.one_of(
    st.text(st.characters(codec="latin-1"), max_size=120),
    st.builds(lambda scheme, value: f"{scheme} {value}", st.sampled_from(["Bearer", "bearer", "Basic", "BASIC", "Digest"]),
              st.text(st.characters(codec="latin-1"), max_size=80)),
    st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=80)),
)
WELL_FORMED_UNKNOWN = credentials.assemble(credentials.ACCESS_TOKEN, "A" * credentials.RANDOM_LENGTH)


@settings(max_examples=150)
@given(header=HEADER)
@example(header="Bearer " + WELL_FORMED_UNKNOWN)
@example(header="Bearer  " + WELL_FORMED_UNKNOWN + " ")
@example(header="Bearer " + "A" * 600)
@example(header="Basic " + base64.b64encode(b"id\x00:" + WELL_FORMED_UNKNOWN.encode()).decode())
def test_management_api_refuses_any_header_cleanly(client: Any, header: str) -> None:
    response = client.get(API + "keys", HTTP_AUTHORIZATION=header)
    assert response.status_code in (400, 401), (header, response.status_code)
    assert response["Content-Type"].startswith("application/json")


@settings(max_examples=150)
@given(header=HEADER, token=st.text(max_size=60))
@example(header="Basic " + base64.b64encode(b"id\x00x:" + credentials.mint("cs").encode()).decode(), token="x")
def test_introspection_refuses_any_header_cleanly(client: Any, header: str, token: str) -> None:
    response = client.post(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, (header, response.status_code)
    assert response.json() == {"error": "invalid_client"}


@pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
@pytest.mark.parametrize("header", ["Basic \x80", "Basic é=="])
def test_non_ascii_basic_credentials_are_invalid_client(client: Any, url: str, header: str) -> None:
    """WSGI hands headers over as latin-1; base64 refused a non-ASCII one with ValueError: a 500."""
    response = client.post(url, {"grant_type": "client_credentials", "token": "x"}, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.status_code
    assert response.json()["error"] == "invalid_client"
