"""Log redaction: every credential-shaped string is masked, however it is glued or encoded."""

from __future__ import annotations

import json
import logging

import pytest

from authserver import credentials
from authserver.logging import JsonFormatter, redact


@pytest.mark.parametrize(
    "template",
    ["token={}", "code%3D{}", "Bearer%20{}", "x_{}", "9{}", "abcdefghijklmnopqrs{}", "{}trailing", "'{}'"],
    ids=["plain", "urlencoded", "bearer-encoded", "underscore-glued", "digit-glued", "long-word-glued",
         "glued-after", "quoted"],
)
@pytest.mark.parametrize("kind", ["at", "rt", "cs", "ac", "ak"])
def test_redact_masks_glued_and_encoded_credentials(template, kind):
    value = credentials.mint(kind)
    assert value not in redact(template.format(value))
    assert value[3:] not in redact(template.format(value))


def test_every_logger_and_exception_text_is_redacted(caplog):
    value = credentials.mint("rt")
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.DEBUG):
        logger.debug("refresh %s", value, extra={"payload": {"token": value}})
        try:
            raise ValueError(f"bad token {value}")
        except ValueError:
            logger.exception("failed")
    assert "bad token rt_" in caplog.text and value not in caplog.text  # the traceback was captured, masked
    assert all(value not in str(vars(record)) for record in caplog.records if not record.exc_info)
    line = JsonFormatter().format(caplog.records[-1])
    assert value not in line and json.loads(line)["msg"] == "failed"


@pytest.mark.django_db
def test_error_reports_hide_credentials_in_headers_and_post_fields(rf):
    from django.views.debug import ExceptionReporter

    from authserver.introspection.endpoint import introspect

    secret, token = credentials.mint("cs"), credentials.mint("at")
    request = rf.post("/oauth/introspect", {"token": token, "client_secret": secret},
                      HTTP_AUTHORIZATION=f"Bearer {token}")
    assert introspect(request).status_code == 401  # unknown resource server; marks the request
    assert request.sensitive_post_parameters == "__ALL__"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        report = ExceptionReporter(request, *sys.exc_info()).get_traceback_text()
    assert "boom" in report
    assert token not in report and secret not in report
