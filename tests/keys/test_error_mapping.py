"""Domain errors (authserver.errors) are answered in one place per interface, by family."""

from __future__ import annotations

import json

import pytest

from authserver.api_auth import api_exception_handler
from authserver.cli import JsonCommand
from authserver.errors import Conflict, DependencyUnavailable, DomainError, NotFound, PolicyViolation
from clients.services import ClientError
from keys.policy import KeyPolicyError


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (KeyPolicyError("quota must be at least 1"), 400,
         {"error": "invalid_request", "error_description": "quota must be at least 1"}),
        (ClientError("public clients have no secret"), 400,
         {"error": "invalid_request", "error_description": "public clients have no secret"}),
        (NotFound("No such key."), 404, {"error": "not_found", "error_description": "No such key."}),
        (Conflict("already rotated"), 409, {"error": "conflict", "error_description": "already rotated"}),
        (DependencyUnavailable("counters down"), 503,
         {"error": "temporarily_unavailable", "error_description": "The server is temporarily unavailable."}),
    ],
)
def test_management_api_answers_each_family(error, status, body):
    response = api_exception_handler(error, {})
    assert response is not None and (response.status_code, response.data) == (status, body)
    assert isinstance(error, DomainError)


def test_key_policy_error_is_still_a_value_error():
    assert issubclass(KeyPolicyError, PolicyViolation) and issubclass(KeyPolicyError, ValueError)


class _Refusing(JsonCommand):
    error: Exception

    def handle(self, *args, **options):
        raise self.error


@pytest.mark.parametrize("error", [KeyPolicyError("bad policy"), NotFound("no such key"), Conflict("busy")])
def test_cli_answers_every_domain_error_on_stderr(capsys, error):
    command = _Refusing()
    command.error = error
    with pytest.raises(SystemExit) as info:
        command.execute(no_color=True, force_color=False, skip_checks=True)
    assert info.value.code == 1
    assert json.loads(capsys.readouterr().err.strip()) == {"error": str(error)}
