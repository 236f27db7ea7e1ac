"""schemathesis against docs/openapi-oauth.yaml and the live WSGI application.

Authorize (anonymous and signed in), consent, token (every grant), introspection, revocation and
metadata, with positive and negative data: no 5xx, and every answer is one the document declares
(status code, content type, JSON body), so the document stays true.

Real credentials and control characters in a share of the cases: tests/fuzz/oauth_cases.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.oauth_cases import DOCUMENT, with_real_values
from tests.fuzz.wsgi import fuzz_operation

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 60  # per operation
OPERATIONS = sorted((method, path) for path, ops in yaml.safe_load(DOCUMENT.read_text())["paths"].items()
                    for method in ops)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_oauth_endpoint(oauth_schema: Any, world: dict[str, Any], method: str, path: str) -> None:
    operation = oauth_schema[path][method].definition.raw["operationId"]

    def call(case: Any) -> None:
        headers, cookies = with_real_values(case, world, operation)
        case.call_and_validate(headers=headers, cookies=cookies, checks=CHECKS)

    fuzz_operation(oauth_schema, method, path, max_examples=MAX_EXAMPLES, call=call)


def test_every_endpoint_is_described() -> None:
    assert {path for _, path in OPERATIONS} == {"/oauth/authorize", "/oauth/token", "/oauth/device", "/oauth/introspect",
                                                "/oauth/revoke", "/oauth/path-key", "/oauth/discovery",
                                                "/.well-known/oauth-authorization-server"}
