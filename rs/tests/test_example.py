"""The documented FastAPI example runs (docs/resource-server-kit.md, examples/fastapi_app.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi.testclient import TestClient

from authserver_rs import ResourceServer

from .conftest import active
from .fake_server import ISSUER, RS_ID, RS_SECRET

EXAMPLE = Path(__file__).parent.parent / "examples" / "fastapi_app.py"


def test_example_app(fake, make_kit, monkeypatch):
    monkeypatch.setenv("AUTHSERVER_RS_CLIENT_ID", RS_ID)
    monkeypatch.setenv("AUTHSERVER_RS_CLIENT_SECRET", RS_SECRET)
    monkeypatch.setenv("AUTHSERVER_RS_METADATA_URL", f"{ISSUER}/d/dc_capability")
    spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Same configuration, talking to the fake server instead of the network.
    kit = make_kit(**{f: getattr(module.kit.config, f) for f in ("metadata_url", "realm", "cache_ttl")},
                   introspection_endpoint=None, revocation_stream=False)
    assert isinstance(kit, ResourceServer)
    original, module.kit = module.kit, kit  # the lifespan starts and closes this one: no network
    module.app.state.authserver_rs = kit
    module.app.user_middleware.clear()
    module.app.middleware_stack = None
    module.install(module.app, kit)
    fake.answers["at_infer"] = active(scope="ai.infer")
    with TestClient(module.app) as client:
        assert client.get("/health").json() == {"ok": True}
        chat = client.post("/v1/chat", json={"prompt": "hello"}, headers={"Authorization": "Bearer at_infer"})
        assert chat.json() == {"completion": "olleh", "client_id": "app-1"}
        refused = client.get("/v1/models", headers={"Authorization": "Bearer at_infer"})
        assert (refused.status_code, refused.headers["www-authenticate"]) == (
            403, 'Bearer realm="ai", error="insufficient_scope", scope="ai.read"')
    original.close()
