"""An AI API protected by authserver-rs (docs/resource-server-kit.md).

    pip install './rs[fastapi]' uvicorn
    export AUTHSERVER_RS_CLIENT_ID=... AUTHSERVER_RS_CLIENT_SECRET=cs_...
    export AUTHSERVER_RS_METADATA_URL=https://auth.example.com/d/dc_...   # or AUTHSERVER_RS_INTROSPECTION_ENDPOINT
    export AUTHSERVER_RS_ROTATING_PATHS=1                                  # if the server rotates this API's paths
    uvicorn fastapi_app:app --host 0.0.0.0 --port 8000

Callers send ``Authorization: Bearer <access token or API key>``; with rotating paths they call
``https://api.example.com/<alias>/v1/chat`` where the alias comes from the server's discovery call.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from authserver_rs import Config, Principal, ResourceServer
from authserver_rs.fastapi import install, require_scopes


def config_from_environment() -> Config:
    env = os.environ
    return Config(
        client_id=env["AUTHSERVER_RS_CLIENT_ID"],
        client_secret=env["AUTHSERVER_RS_CLIENT_SECRET"],
        metadata_url=env.get("AUTHSERVER_RS_METADATA_URL"),
        introspection_endpoint=env.get("AUTHSERVER_RS_INTROSPECTION_ENDPOINT"),
        revocation_events_endpoint=env.get("AUTHSERVER_RS_REVOCATION_EVENTS_ENDPOINT"),
        path_key_endpoint=env.get("AUTHSERVER_RS_PATH_KEY_ENDPOINT"),
        rotating_paths=env.get("AUTHSERVER_RS_ROTATING_PATHS") == "1",
        ca_file=env.get("AUTHSERVER_RS_CA_FILE"),
        realm="ai",
        cache_ttl=60,
        # Behind one reverse proxy on the same host: believe its X-Forwarded-For, nobody else's.
        client_ip_header="X-Forwarded-For" if env.get("AUTHSERVER_RS_BEHIND_PROXY") == "1" else None,
        trusted_proxies=("127.0.0.1/32",) if env.get("AUTHSERVER_RS_BEHIND_PROXY") == "1" else (),
    )


kit = ResourceServer(config_from_environment())


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    kit.start()  # the revocation stream: cached answers are served only while it is up
    yield
    await kit.aclose()


app = FastAPI(title="Example AI API", lifespan=lifespan)
install(app, kit)  # checks rotating path aliases; the routes below verify the caller


class ChatRequest(BaseModel):
    prompt: str
    max_tokens: int = 256


class ChatResponse(BaseModel):
    completion: str
    client_id: str | None


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@app.post("/v1/chat")
def chat(body: ChatRequest, principal: Annotated[Principal, Depends(require_scopes("ai.infer"))]) -> ChatResponse:
    # A real API runs its model here; principal.sub / client_id / scope / aud / exp say who asks.
    return ChatResponse(completion=body.prompt[::-1][: body.max_tokens], client_id=principal.client_id)


@app.get("/v1/models")
def models(principal: Annotated[Principal, Depends(require_scopes("ai.read"))]) -> dict[str, list[str]]:
    return {"models": ["echo-1"]}
