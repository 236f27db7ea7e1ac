"""The command line as a real process: exit codes, stdout and stderr as documented (docs/cli.md),
the front door answering ``--help``, usage errors and ``version`` without Django, and a dependency
down (Redis, a read-only database) as the one JSON ``unavailable`` line, never a traceback."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authserver.cliargs import NOUNS
from tests.cli.helpers import ROOT, manage, process_env

FRONT_DOOR_CPU = 0.5  # seconds; Django's full set-up alone costs over a second


@pytest.mark.parametrize("noun", sorted(NOUNS))
def test_help_is_answered_without_django(noun):
    done, cpu = manage(noun, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert f"usage: manage.py {noun}" in done.stdout and "\nExamples:\n" in done.stdout
    assert cpu < FRONT_DOOR_CPU, f"{noun} --help took {cpu:.2f}s of CPU"


@pytest.mark.parametrize("args", [["client", "frobnicate"], ["client"], ["apikey", "show"],
                                  ["scope", "create", "x", "--bogus"], ["keys", "retire", "one"]],
                         ids=lambda a: " ".join(a))
def test_usage_errors_exit_2_with_one_json_line(args):
    done, cpu = manage(*args)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    error = json.loads(line)
    assert error["error"] == "usage" and error["detail"] and error["usage"].startswith("usage: manage.py")
    assert cpu < FRONT_DOOR_CPU


def test_version_is_json():
    done, cpu = manage("version")
    assert done.returncode == 0 and set(json.loads(done.stdout)) == {"authserver", "django", "python"}
    assert cpu < FRONT_DOOR_CPU


# -- with a database: a migrated embedded installation of its own (the same in both passes) ----------
@pytest.fixture(scope="module")
def installation(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("cli-install")
    env = process_env(data)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300,
                   capture_output=True)
    client = json.loads(manage("client", "create", "--name", "proc", "--type", "confidential", "--grant",
                               "client_credentials", env=env)[0].stdout)
    key = json.loads(manage("apikey", "create", "--client", client["client_id"], "--name", "k", env=env)[0].stdout)
    yield {"data": data, "env": env, "client_id": client["client_id"], "key_id": key["id"]}


def _json_line(text: str) -> dict[str, Any]:
    [line] = text.splitlines()
    parsed: dict[str, Any] = json.loads(line)
    return parsed


@pytest.mark.once
def test_success_refusal_and_not_found_exit_codes(installation):
    env = installation["env"]
    done, _ = manage("scope", "create", "ai.infer", "--description", "Inférence…", env=env)
    assert done.returncode == 0 and done.stderr == ""  # no INFO log line next to the answer
    assert _json_line(done.stdout)["description"] == "Inférence…"
    done, _ = manage("client", "show", "nope", env=env)
    assert (done.returncode, done.stdout, _json_line(done.stderr)) == (1, "", {"error": "no such client"})
    assert _json_line(manage("keys", "check", env=env)[0].stdout)["ok"] is True
    done, _ = manage("keys", "retire", "1", env=env)  # a CommandError is the same JSON line
    assert done.returncode == 1 and "current version" in _json_line(done.stderr)["error"]
    done, _ = manage("client", "list", env=env)
    assert done.returncode == 0 and done.stderr == ""
    assert [c["client_id"] for c in _json_line(done.stdout)["clients"]] == [installation["client_id"]]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.once
def test_redis_down_is_the_unavailable_line(installation):
    env = {**installation["env"], "REDIS_URL": f"redis://127.0.0.1:{_dead_port()}/0"}
    for args in (["apikey", "revoke", installation["key_id"]], ["client", "revoke-tokens", installation["client_id"]]):
        done, _ = manage(*args, env=env)
        assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
        assert _json_line(done.stderr) == {"error": "unavailable", "detail": "the revocation store (redis or the "
                                                                               "data directory) is unavailable"}


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """``path`` unwritable, even for root (chattr +i) where chmod is not enough."""
    path.chmod(0o444)
    immutable = False
    try:
        try:
            path.open("ab").close()
        except PermissionError:
            pass
        else:  # root: permission bits don't stop it
            chattr = shutil.which("chattr")
            if not chattr or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
                pytest.skip("cannot make a file read-only for this user")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run([shutil.which("chattr") or "chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


@pytest.mark.once
def test_a_read_only_database_is_the_unavailable_line(installation, tmp_path):
    copy = tmp_path / "install"
    shutil.copytree(installation["data"], copy)
    env = {**installation["env"], "AUTHSERVER_DATA_DIR": str(copy)}
    with _read_only(copy / "db.sqlite3"):
        for args in (["scope", "create", "ai.ro"], ["client", "delete", installation["client_id"]],
                     ["apikey", "delete", installation["key_id"]]):
            done, _ = manage(*args, env=env)
            assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
            assert _json_line(done.stderr) == {"error": "unavailable", "detail": "the database is read-only"}
