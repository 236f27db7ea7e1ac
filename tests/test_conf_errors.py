"""Configuration errors all at once (issue 14): every entry point (manage.py commands, the WSGI
application, the Celery worker and beat) refuses a bad configuration with ONE message naming every
missing or invalid variable, what is wrong and how to fix it; exit status 78 (EX_CONFIG), no
traceback, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authserver import conf, datadir
from authserver.conf_parsers import EX_CONFIG, ConfigurationErrors

ROOT = Path(__file__).resolve().parents[1]
SECRET = "pw-never-in-a-message-8c1f"  # noqa: S105 - a marker, not a credential

# Three bad variables at once: one missing (production needs a secret key), two invalid.
BAD = {
    "AUTHSERVER_ENV": "production",
    "AUTHSERVER_ISSUER": "https://auth.example.test",
    "AUTHSERVER_ALLOWED_HOSTS": "auth.example.test",
    "DATABASE_URL": f"postgres://authserver:{SECRET}@localhost:5432/authserver",
    "REDIS_URL": "redis://localhost:6379/0",
    "AUTHSERVER_LOG_LEVEL": "LOUD",
    "AUTHSERVER_ACCESS_TOKEN_SECONDS": "ten",
}
NAMED = ["AUTHSERVER_SECRET_KEY", "AUTHSERVER_LOG_LEVEL", "AUTHSERVER_ACCESS_TOKEN_SECONDS"]


def test_every_bad_variable_is_listed_with_its_fix():
    with pytest.raises(ConfigurationErrors) as caught:
        conf.load(BAD, testing=False)
    errors = caught.value
    assert [p.name for p in errors.problems] == NAMED
    assert all(p.fix for p in errors.problems)
    report = str(errors)
    assert report.startswith("authserver cannot start: 3 configuration problems")
    assert "AUTHSERVER_SECRET_KEY must be set when AUTHSERVER_ENV=production. Fix: set it" in report
    assert "AUTHSERVER_ACCESS_TOKEN_SECONDS must be an integer, not 'ten'" in report
    assert SECRET not in report


def test_files_and_combinations_are_listed_with_the_rest(tmp_path):
    env = {**BAD, "AUTHSERVER_SECRET_KEY_FILE": str(tmp_path / "missing"), "AUTHSERVER_DEBUG": "1",
           "AUTHSERVER_SMTP_USER": "mailer"}
    with pytest.raises(ConfigurationErrors) as caught:
        conf.load(env, testing=False)
    names = [p.name for p in caught.value.problems]
    # The unreadable file is the secret key's one problem (not also "must be set").
    assert names.count("AUTHSERVER_SECRET_KEY") == 1
    assert {"AUTHSERVER_LOG_LEVEL", "AUTHSERVER_ACCESS_TOKEN_SECONDS", "AUTHSERVER_DEBUG",
            "AUTHSERVER_SMTP_PASSWORD"} <= set(names)


def test_an_unwritable_data_directory_names_the_variable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = conf.load({"AUTHSERVER_DATA_DIR": str(blocker / "data")}, testing=False)
    with pytest.raises(ConfigurationErrors) as caught:
        datadir.prepare(config=config)
    (found,) = caught.value.problems
    assert found.name == "AUTHSERVER_DATA_DIR" and "Not a directory" in found.message and "chmod" not in found.fix


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTHSERVER_", "PYTEST", "DJANGO_SETTINGS")) and k not in {"DATABASE_URL", "REDIS_URL"}}
    return {**env, "AUTHSERVER_DATA_DIR": str(data_dir), **extra}


ENTRY_POINTS = {
    "manage.py check": [sys.executable, "manage.py", "check"],
    "manage.py serve": [sys.executable, "manage.py", "serve"],
    "wsgi": [sys.executable, "-c", "import authserver.wsgi"],
    "celery worker": [sys.executable, "-m", "celery", "-A", "authserver", "worker", "--concurrency", "1"],
}


@pytest.mark.parametrize("argv", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_each_entry_point_lists_every_bad_variable_and_exits(tmp_path, argv):
    data_dir = tmp_path / "data"
    done = subprocess.run(argv, cwd=ROOT, env=_env(data_dir, **BAD), capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == EX_CONFIG, output
    assert "Traceback" not in output, output
    for name in NAMED:
        assert output.count(f"  - {name} ") == 1, output
    assert SECRET not in output
    assert not data_dir.exists()  # refused before anything was written


def test_an_unwritable_data_directory_is_one_message_too(tmp_path):
    (tmp_path / "a-file").write_text("")
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_env(tmp_path / "a-file" / "data"),  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EX_CONFIG, done.stderr
    assert "Traceback" not in done.stderr
    assert "AUTHSERVER_DATA_DIR: cannot write" in done.stderr and "Fix: point AUTHSERVER_DATA_DIR" in done.stderr


def test_a_json_command_lists_every_bad_variable_as_one_json_line(tmp_path):
    data_dir = tmp_path / "data"
    done = subprocess.run([sys.executable, "manage.py", "client", "list"], cwd=ROOT, env=_env(data_dir, **BAD),  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EX_CONFIG and done.stdout == ""
    (line,) = done.stderr.splitlines()
    report = json.loads(line)
    assert report["error"] == "configuration"
    assert {problem["variable"] for problem in report["problems"]} >= set(NAMED)
    assert all(problem["fix"] for problem in report["problems"])
    assert SECRET not in done.stderr and not data_dir.exists()
