"""A live server (``manage.py serve``) on a throwaway PostgreSQL, with a service client and a
resource server, for the fault tests that stop, lock or switch that database under it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests

from tests.e2e.server import RunningServer, start_server
from tests.faults.postgres import ThrowawayPostgres

AUDIENCE = "https://chat-api.example.test"
UNAVAILABLE = {"error": "temporarily_unavailable", "error_description": "The server is temporarily unavailable."}


@dataclass
class Live:
    server: RunningServer
    postgres: ThrowawayPostgres
    rs: dict[str, object]
    svc: dict[str, object]

    def token(self, timeout: float = 30) -> requests.Response:
        return requests.post(f"{self.server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(str(self.svc["client_id"]), str(self.svc["client_secret"])),
                             verify=self.server.cert, timeout=timeout)

    def introspect(self, value: str, timeout: float = 30) -> requests.Response:
        return requests.post(f"{self.server.base_url}/oauth/introspect", data={"token": value},
                             auth=(str(self.rs["client_id"]), str(self.rs["client_secret"])),
                             verify=self.server.cert, timeout=timeout)

    def admin(self) -> psycopg.Connection:
        """A superuser session on the server's PostgreSQL (the maintenance database), autocommit."""
        url = urlunsplit(urlsplit(self.postgres.url)._replace(path="/postgres"))
        return psycopg.connect(url, autocommit=True)


@contextmanager
def live_server(data_dir: Path, *serve_args: str) -> Iterator[Live]:
    postgres = ThrowawayPostgres()
    postgres.init()
    try:
        server = start_server(data_dir, "--no-worker", "--no-beat", *serve_args,
                              env_overrides={"DATABASE_URL": postgres.url})
        try:
            server.manage("scope", "create", "ai.infer")
            rs = server.manage("client", "create", "--name", "API", "--type", "confidential", "--grant",
                               "client_credentials", "--resource-server", AUDIENCE)
            svc = server.manage("client", "create", "--name", "svc", "--type", "confidential", "--grant",
                                "client_credentials", "--scope", "ai.infer", "--audience", AUDIENCE)
            yield Live(server=server, postgres=postgres, rs=rs, svc=svc)
        finally:
            server.stop()
    finally:
        postgres.destroy()
