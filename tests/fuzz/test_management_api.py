"""schemathesis against the management API's own OpenAPI document (``/<API_PATH>/schema``).

Every operation, positive and negative data, with a token carrying both scopes: no 5xx, and
every answer is one the document declares (status code, content type, body schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keys.api import KEYS_READ, KEYS_WRITE
from keys.models import ApiKey
from tests.factories import RS_AUDIENCE, make_client
from tests.fuzz.wsgi import fuzz_operation, generous_rate_limits, wsgi_application
from tests.helpers import API
from tests.keys.conftest import api_token, create_key

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 40  # per operation: the nine take about 40 s here
OPERATIONS = sorted((method, path) for path, ops in SchemaGenerator().get_schema(request=None, public=True)["paths"]
                    .items() for method in ops)


@pytest.fixture
def caller(client: Any) -> dict[str, Any]:
    """A token with both scopes, and one live key (and its owner) for path parameters to name."""
    owner, _ = make_client(name="customer", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    _, token = api_token(client, [KEYS_READ, KEYS_WRITE])
    created = create_key(client, token, owner)
    assert created.status_code == 201, created.content
    return {"token": token, "key": str(ApiKey.objects.get().pk), "client": owner.client_id}


@pytest.fixture
def served_schema(caller: dict[str, Any], settings: Any) -> Iterator[Any]:
    """The document the server serves, with the server as schemathesis's WSGI application.

    After ``caller``: the test client it uses reconnects the request signals when it is done.
    """
    generous_rate_limits(settings)
    with wsgi_application() as app:
        yield schemathesis.openapi.from_wsgi(API + "schema", app)


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 9 and all(path.startswith(API) for _, path in OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_management_api(served_schema: Any, caller: dict[str, Any], method: str, path: str) -> None:
    def call(case: Any) -> None:
        # Random ids only ever reach the 404 branch: half the cases (by the drawn value's length,
        # so the choice is part of the example and shrinks with it) name the live key or owner.
        # Some of the other values (by length, again) get a control character (NUL, TAB or \x12).
        for name, live in (("id", caller["key"]), ("client_id", caller["client"])):
            drawn = (case.path_parameters or {}).get(name)
            if isinstance(drawn, str) and len(drawn) % 2 == 0:
                case.path_parameters[name] = live
            elif isinstance(drawn, str) and len(drawn) % 5 in (1, 3):
                case.path_parameters[name] = f"{drawn}{chr(len(drawn) % 3 * 9)}x"
        case.call_and_validate(headers={"Authorization": f"Bearer {caller['token']}"}, checks=CHECKS)

    fuzz_operation(served_schema, method, path, max_examples=MAX_EXAMPLES, call=call)
