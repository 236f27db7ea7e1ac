"""A cached introspection enters at most six project modules.

How it is counted: ``sys.setprofile`` sees every Python function call of the request served by the
production WSGI application (``authserver.handlers.Dispatcher``, the lean machine handler); each
call whose code lives in a file under ``authserver/``, ``clients/`` or ``keys/`` names the module it
entered. The request is an introspection of a live access token already answered once (so served
from the in-process cache), with the per-process checks of the revocation generation and the
database fresh, as on a busy worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from authserver import credentials, handlers, revocation
from tests.bench.test_machine_handler import app, wsgi_call  # noqa: F401 - the app fixture
from tests.conftest import basic_auth

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tuple(str(ROOT / package) + "/" for package in ("authserver", "clients", "keys"))
BUDGET = 6


def _modules_entered(call: Any) -> set[str]:
    entered: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(PROJECT):
            path = Path(frame.f_code.co_filename).relative_to(ROOT).with_suffix("")
            entered.add(".".join(path.parts).removesuffix(".__init__"))

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return entered


def test_a_cached_introspection_enters_at_most_six_project_modules(app, resource_server, service_client,  # noqa: F811
                                                                   monkeypatch):
    rs, rs_secret = resource_server
    svc, svc_secret = service_client
    status, _, body = wsgi_call(app, "/oauth/token", "grant_type=client_credentials&scope=ai.infer",
                                basic_auth(svc.client_id, svc_secret))
    assert status == 200, body
    token = json.loads(body)["access_token"]
    auth = basic_auth(rs.client_id, rs_secret)
    assert json.loads(wsgi_call(app, "/oauth/introspect", f"token={token}", auth)[2])["active"] is True

    def cached_introspection() -> None:
        status, _, body = wsgi_call(app, "/oauth/introspect", f"token={token}", auth)
        assert status == 200 and json.loads(body)["active"] is True

    # Steady state, as on a worker serving a request every few milliseconds: the generation and the
    # database were checked moments ago. The interval is widened for the count so that the profiler's
    # own slowness can't make this request the one that re-checks (that path is counted below).
    monkeypatch.setattr(revocation, "CHECK_INTERVAL", 60.0)
    revocation.current()
    revocation._database_reachable()
    entered = _modules_entered(cached_introspection)
    print(f"\ncached introspection entered {len(entered)} project modules: {sorted(entered)}")
    assert entered <= {"authserver.handlers", "authserver.ratelimit.limiter", "authserver.introspection.endpoint",
                       "authserver.introspection.service", "authserver.revocation", "authserver.credentials"}
    assert len(entered) <= BUDGET


def test_the_counter_sees_a_miss_enter_more(app, resource_server):  # noqa: F811
    """The method can fail: a cache miss (a made-up token) also runs the format check and the query."""
    rs, rs_secret = resource_server
    auth = basic_auth(rs.client_id, rs_secret)
    wsgi_call(app, "/oauth/introspect", f"token={credentials.mint('at')}", auth)  # resource server cached
    entered = _modules_entered(lambda: wsgi_call(app, "/oauth/introspect", f"token={credentials.mint('at')}", auth))
    assert "authserver.db" in entered
    assert handlers.__name__ in entered
