"""pytest plugin: capture every log record of the session, and run the leak check last.

Loaded with ``-p tests.leakcheck`` (pyproject addopts) so it sees the whole session.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

SESSION_LOG: list[str] = []


class _SessionCapture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record must not break the capture
            text = str(record.msg)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        trace = record.exc_text or (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        SESSION_LOG.append(f"{record.name} {record.levelname} {text} {extras} {trace}")


_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_handler = _SessionCapture(level=logging.DEBUG)


@pytest.fixture(autouse=True, scope="session")
def _capture_all_logs() -> Any:
    root = logging.getLogger()
    root.addHandler(_handler)
    previous = root.level
    root.setLevel(logging.DEBUG)  # catch debug lines too: libraries log the most there
    logging.getLogger("faker").setLevel(logging.INFO)  # locale chatter, no credentials
    yield
    root.setLevel(previous)
    root.removeHandler(_handler)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "leakcheck: runs after every other test (sees the whole session)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("leakcheck") is not None)
