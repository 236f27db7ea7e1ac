"""The ``cluster`` fixture: one cluster (harness.py) for the whole session, torn down even on failure.

Only the PostgreSQL pass runs it (CI's pass 2): the topology needs PostgreSQL (production refuses
anything else), a ``redis-server`` binary to start a Redis of its own, and nginx.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import NGINX, REDIS_SERVER, Cluster


def _skip_reason() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "the cluster test runs in the PostgreSQL pass only (DATABASE_URL is not PostgreSQL)"
    missing = [name for name, path in (("nginx", NGINX), ("redis-server", REDIS_SERVER)) if not os.path.exists(path)]
    if missing and not os.environ.get("CI"):
        return f"the cluster test needs {', '.join(missing)} (CI installs them)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    for item in items:
        if "tests/cluster/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.cluster)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="authserver-cluster-"))
    running = Cluster(os.environ["DATABASE_URL"], workdir)
    failed = True
    try:
        running.start()
        failed = False
    finally:
        if failed:
            print(running.log_tails())
            running.stop()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call" and report.failed and "cluster" in getattr(item, "funcargs", {}):
        report.sections.append(("cluster logs", item.funcargs["cluster"].log_tails()))
    return report


AUDIENCE = "https://cluster-api.example.test"


@pytest.fixture(scope="session")
def registered(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """A scope, a client that may get tokens for ``AUDIENCE`` and the resource server of ``AUDIENCE``."""
    cluster.manage("scope", "create", "ai.infer", "--description", "Run inference")
    rs = cluster.manage("client", "create", "--name", "Cluster API", "--type", "confidential",
                        "--grant", "client_credentials", "--resource-server", AUDIENCE)
    return {
        "svc": cluster.manage("client", "create", "--name", "Cluster batch", "--type", "confidential",
                              "--grant", "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE),
        "rs": rs,  # registered first: an --audience must name a registered resource server
    }
