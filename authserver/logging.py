"""Structured logs, with every credential-shaped string masked whatever logger produced it."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from authserver.credentials import CREDENTIAL_PATTERN

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


# Standard Webhooks signing secrets (clients.webhooks): "whsec_" + base64.
WEBHOOK_SECRET_PATTERN = re.compile(r"whsec_[A-Za-z0-9+/]{16,}={0,2}")


def redact(text: str) -> str:
    text = CREDENTIAL_PATTERN.sub(lambda m: f"{m.group(1)}_[REDACTED]", text)
    return WEBHOOK_SECRET_PATTERN.sub("whsec_[REDACTED]", text) if "whsec_" in text else text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, HttpRequest):
        # django.request attaches the request; its repr carries the query string.
        return redact(repr(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


class RedactCredentialsFilter(logging.Filter):
    """Rewrites the record in place: message, arguments, extras and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact_value(record.msg) if isinstance(record.msg, str) else record.msg
        if record.args:
            record.args = _redact_value(record.args)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value if isinstance(value, (int, float, bool, type(None))) else redact(str(value))
        if record.exc_text:
            payload["exc"] = redact(record.exc_text)
        elif record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


_base_factory = logging.getLogRecordFactory()


def _redacting_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if record.args:
        record.args = _redact_value(record.args)
    return record


_base_make_record = logging.Logger.makeRecord


def _redacting_make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    """``extra=`` fields are set after the record factory runs; redact them here."""
    record = _base_make_record(self, *args, **kwargs)
    for key, value in list(vars(record).items()):
        if key not in _STANDARD_ATTRS and isinstance(value, (str, HttpRequest, list, tuple, dict)):
            setattr(record, key, _redact_value(value))
    return record


def install_record_redaction() -> None:
    """Redact at record creation, so every handler (ours, pytest's, a library's) sees clean text."""
    if logging.getLogRecordFactory() is not _redacting_record_factory:
        logging.setLogRecordFactory(_redacting_record_factory)
    if logging.Logger.makeRecord is not _redacting_make_record:
        logging.Logger.makeRecord = _redacting_make_record  # type: ignore[method-assign]


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (DEBUG pages, mailed reports) hide the Authorization header too: it carries
    Basic client secrets and Bearer tokens, and Django's default pattern does not match its name."""

    hidden_settings = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTHORIZATION|COOKIE", flags=re.I)

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for name in ("HTTP_AUTHORIZATION", "HTTP_COOKIE"):
            if name in meta:
                meta[name] = self.cleansed_substitute
        return meta
