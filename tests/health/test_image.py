"""The image, read (no Docker engine here): a HEALTHCHECK on /livez, a migrate role, a web role
that does not migrate, the PostgreSQL client installed; and the healthcheck script run for real."""

from __future__ import annotations

import re
import runpy
import shlex
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from authserver import conf

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = (ROOT / "docker-entrypoint.sh").read_text()
HEALTHCHECK = runpy.run_path(str(ROOT / "docker-healthcheck.py"))


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def role(name: str) -> str:
    match = re.search(rf"^    {name}\)\n(.*?)^        ;;", ENTRYPOINT, re.S | re.M)
    assert match, f"no {name} role"
    return "\n".join(line for line in match.group(1).splitlines() if not line.lstrip().startswith("#"))


def test_healthcheck_probes_livez_with_python():
    checks = [args for op, args in final_stage() if op == "HEALTHCHECK"]
    assert len(checks) == 1
    assert re.search(r'CMD \["python", "/usr/local/bin/docker-healthcheck"\]', checks[0])
    copies = [args for op, args in final_stage() if op == "COPY"]
    assert "docker-healthcheck.py /usr/local/bin/docker-healthcheck" in copies
    assert '"/livez"' in (ROOT / "docker-healthcheck.py").read_text()


def test_postgresql_client_in_the_final_stage():
    runs = " ".join(args for op, args in final_stage() if op == "RUN")
    assert re.search(r"apt-get install .*postgresql-client", runs)


def test_nothing_sets_the_issuer_or_production_secrets_in_the_image():
    env = " ".join(args for op, args in instructions(DOCKERFILE) if op in {"ENV", "ARG"})
    for name in ("AUTHSERVER_ISSUER", "AUTHSERVER_SECRET_KEY", "AUTHSERVER_ENV", "DATABASE_URL"):
        assert name not in env


def test_production_without_an_issuer_refuses_to_start():
    env = {"AUTHSERVER_ENV": "production", "AUTHSERVER_SECRET_KEY": "x" * 64, "AUTHSERVER_ALLOWED_HOSTS": "a.example",
           "DATABASE_URL": "postgres://u:p@db/authserver", "REDIS_URL": "redis://redis:6379/0"}
    with pytest.raises(conf.ImproperlyConfigured, match="AUTHSERVER_ISSUER must be set"):
        conf.load(env, testing=False)


def test_migrate_role_runs_the_locked_migration():
    assert shlex.split(role("migrate").strip()) == ["exec", "python", "manage.py", "migrate_locked", "$@"]


def test_web_does_not_migrate():
    web = role("web")
    assert "migrate" not in web
    assert "granian" in web and "gunicorn" not in web
    header = ENTRYPOINT.split("set -eu")[0]
    assert "gunicorn" not in header and "gunicorn" not in DOCKERFILE


def test_serve_and_web_name_their_healthcheck_target():
    assert "$HEALTHCHECK_TARGET" in role("web") and "$HEALTHCHECK_TARGET" in role("serve")
    for name in ("worker", "beat", "migrate"):
        assert "HEALTHCHECK_TARGET" not in role(name)


@pytest.mark.parametrize(("allowed", "host"), [
    ("", "127.0.0.1"), ("auth.example.com,other", "auth.example.com"), (".example.com", "example.com"),
    ("*", "127.0.0.1"), (" , *, b.example", "b.example"),
])
def test_healthcheck_sends_an_allowed_host(allowed, host):
    assert HEALTHCHECK["allowed_host"]({"AUTHSERVER_ALLOWED_HOSTS": allowed}) == host


@pytest.fixture
def listener() -> Any:
    seen: dict[str, Any] = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["path"], seen["host"] = self.path, self.headers["Host"]
            self.send_response(seen["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1), (301, 1)])
def test_healthcheck_script_exit_code(listener, tmp_path, status, code):
    server, seen = listener
    seen["status"] = status
    target = tmp_path / "target"
    target.write_text(f"http 127.0.0.1 {server.server_address[1]}\n")
    env = {"HEALTHCHECK_TARGET": str(target), "AUTHSERVER_ALLOWED_HOSTS": "auth.example.com"}
    assert HEALTHCHECK["main"](env) == code
    assert seen["path"] == "/livez" and seen["host"] == "auth.example.com"


def test_healthcheck_script_fails_when_nothing_listens(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = tmp_path / "target"
    target.write_text(f"http 127.0.0.1 {port}\n")
    assert HEALTHCHECK["main"]({"HEALTHCHECK_TARGET": str(target)}) == 1


def test_healthcheck_script_passes_roles_without_http(tmp_path):
    assert HEALTHCHECK["main"]({"HEALTHCHECK_TARGET": str(tmp_path / "absent")}) == 0
