"""pytest plugin: the test run's own data directory, prepared before pytest-django imports the settings.

Loaded with ``-p tests.datadir_plugin`` (pyproject addopts): a conftest loads too late, after
pytest-django has set Django up. The suite keeps its state apart from a developer's running server,
and each run apart from any other running at the same time (its own secrets, counters, broker
folders); processes the tests start inherit ``AUTHSERVER_DATA_DIR``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

import pytest

from authserver import datadir


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    if not os.environ.get("AUTHSERVER_DATA_DIR"):
        (datadir.BASE_DIR / "var").mkdir(mode=0o700, exist_ok=True)
        path = tempfile.mkdtemp(prefix="test-", dir=datadir.BASE_DIR / "var")
        atexit.register(shutil.rmtree, path, True)
        os.environ["AUTHSERVER_DATA_DIR"] = path
    datadir.prepare()
