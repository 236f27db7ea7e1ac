"""``<NAME>_FILE``: every configuration variable can come from a file (compose and Docker secrets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf, conf_files
from authserver.conf_parsers import ConfigurationErrors
from tests.test_conf import PRODUCTION

SECRET = "s3cr3t-value-never-in-a-message"  # noqa: S105 - a marker, not a credential


def _file(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_production_secrets_from_files(tmp_path):
    env = {"AUTHSERVER_ENV": "production", "AUTHSERVER_ISSUER": "https://auth.example.com",
           "AUTHSERVER_ALLOWED_HOSTS": "auth.example.com"}
    for name in ("AUTHSERVER_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_PKCS11_PIN"):
        env[f"{name}_FILE"] = _file(tmp_path, name.lower(), PRODUCTION.get(name, "1234") + "\n")
    config = conf.load(env, testing=False)
    assert config.secret_key == "x" * 64
    assert config.database_url == PRODUCTION["DATABASE_URL"] and config.redis_url == PRODUCTION["REDIS_URL"]
    assert config.keystore.pkcs11_pin == "1234"


# Every declared variable has a file form, except the one whose file form is a variable of its own.
@pytest.mark.parametrize("name", sorted(set(conf.env_names()) - {"AUTHSERVER_KEYSTORE"}))
def test_every_declared_variable_has_a_file_form(tmp_path, name):
    resolved = conf_files.resolve({f"{name}_FILE": _file(tmp_path, "value", "42\n")}, conf.env_names())
    assert resolved[name] == "42"


@pytest.mark.parametrize(("content", "expected"), [
    ("value\n", "value"),
    ("value", "value"),
    ("value\n\n", "value\n"),  # one newline only: the rest is the file's
    ("two words \n", "two words "),
    ("", ""),
])
def test_one_trailing_newline_is_dropped(tmp_path, content, expected):
    env = {"AUTHSERVER_SECRET_KEY_FILE": _file(tmp_path, "key", content)}
    assert conf_files.resolve(env, ["AUTHSERVER_SECRET_KEY"])["AUTHSERVER_SECRET_KEY"] == expected


def test_values_are_parsed_as_if_set_directly(tmp_path):
    config = conf.load({"AUTHSERVER_ACCESS_TOKEN_SECONDS_FILE": _file(tmp_path, "ttl", "300\n"),
                        "AUTHSERVER_ALLOWED_HOSTS_FILE": _file(tmp_path, "hosts", "a.example,b.example\n")},
                       testing=False)
    assert config.tokens.access_default_seconds == 300
    assert config.allowed_hosts == ("a.example", "b.example")


def test_an_empty_file_means_unset(tmp_path):
    config = conf.load({"AUTHSERVER_ACCESS_TOKEN_SECONDS_FILE": _file(tmp_path, "ttl", "\n")}, testing=False)
    assert config.tokens.access_default_seconds == 600
    with pytest.raises(ImproperlyConfigured, match="AUTHSERVER_SECRET_KEY must be set"):
        conf.load({**PRODUCTION, "AUTHSERVER_SECRET_KEY": "",
                   "AUTHSERVER_SECRET_KEY_FILE": _file(tmp_path, "key", "\n")}, testing=False)


@pytest.mark.parametrize("name", ["AUTHSERVER_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_ISSUER"])
def test_both_forms_at_once_are_refused(tmp_path, name):
    env = {**PRODUCTION, f"{name}_FILE": _file(tmp_path, "value", PRODUCTION[name])}
    with pytest.raises(ConfigurationErrors) as caught:
        conf.load(env, testing=False)
    assert [p.message for p in caught.value.problems] == [f"{name} and {name}_FILE are both set"]
    assert PRODUCTION[name] not in str(caught.value)


def test_a_blank_direct_value_leaves_the_file_form(tmp_path):
    env = {"AUTHSERVER_SECRET_KEY": " ", "AUTHSERVER_SECRET_KEY_FILE": _file(tmp_path, "key", SECRET)}
    assert conf.load(env, testing=False).secret_key == SECRET


def test_a_blank_file_variable_is_unset():
    assert conf.load({"AUTHSERVER_SECRET_KEY_FILE": "  "}, testing=False).secret_key == ""


@pytest.mark.parametrize(("make_path", "reason"), [
    (lambda tmp: tmp / "missing", "No such file or directory"),
    (lambda tmp: tmp, "Is a directory"),
    (lambda tmp: tmp / "missing" / "deeper", "No such file or directory"),
])
def test_an_unreadable_file_names_the_variable(tmp_path, make_path, reason):
    path = make_path(tmp_path)
    with pytest.raises(ImproperlyConfigured) as caught:
        conf.load({"AUTHSERVER_SECRET_KEY_FILE": str(path)}, testing=False)
    assert [p.message for p in caught.value.problems] == [f"AUTHSERVER_SECRET_KEY_FILE: cannot read {path} ({reason})"]


def test_a_file_that_is_not_text_is_refused_without_quoting_it(tmp_path):
    path = _file(tmp_path, "binary", b"\xff" + SECRET.encode() + b"\xfe")
    with pytest.raises(ImproperlyConfigured) as caught:
        conf.load({"DATABASE_URL_FILE": path}, testing=False)
    message = str(caught.value)
    assert [p.message for p in caught.value.problems] == [f"DATABASE_URL_FILE: {path} is not UTF-8 text"]
    assert SECRET not in message and "xff" not in message and caught.value.__cause__ is None


def test_the_file_contents_never_reach_an_error_or_the_repr(tmp_path):
    env = {**PRODUCTION, "AUTHSERVER_SECRET_KEY": "", "AUTHSERVER_SECRET_KEY_FILE": _file(tmp_path, "key", SECRET)}
    assert SECRET not in repr(conf.load(env, testing=False))
    with pytest.raises(ImproperlyConfigured) as caught:  # a later, unrelated error
        conf.load({**env, "AUTHSERVER_DEBUG": "1"}, testing=False)
    assert SECRET not in str(caught.value)


def test_the_key_store_path_stays_a_variable_of_its_own(tmp_path):
    # AUTHSERVER_KEYSTORE_FILE names the key file; it is not the file form of AUTHSERVER_KEYSTORE.
    config = conf.load({"AUTHSERVER_KEYSTORE": "file", "AUTHSERVER_KEYSTORE_FILE": str(tmp_path / "ks.json")},
                       testing=False)
    assert config.keystore.backend == "file" and config.keystore.file == tmp_path / "ks.json"
    path = _file(tmp_path, "ks-path", str(tmp_path / "other.json") + "\n")  # ...which has a file form itself
    assert conf.load({"AUTHSERVER_KEYSTORE_FILE_FILE": path}, testing=False).keystore.file == tmp_path / "other.json"


def test_only_declared_variables_are_read_from_files(tmp_path):
    env = {"HOME_FILE": _file(tmp_path, "home", "/nowhere"), "AUTHSERVER_NO_SUCH_FILE": "/nonexistent/x"}
    assert conf_files.resolve(env, conf.env_names()) == env


def test_the_environment_given_is_not_changed(tmp_path):
    env = {"REDIS_URL_FILE": _file(tmp_path, "redis", "redis://r:6379/0\n")}
    before = dict(env)
    assert conf_files.resolve(env, conf.env_names())["REDIS_URL"] == "redis://r:6379/0"
    assert env == before


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False),
    ({"AUTHSERVER_ISSUER": " "}, False),
    ({"AUTHSERVER_ISSUER_FILE": ""}, False),
    ({"AUTHSERVER_ISSUER": "https://a.example"}, True),
    ({"AUTHSERVER_ISSUER_FILE": "/run/secrets/issuer"}, True),
])
def test_given_sees_both_forms(env, expected):
    # manage.py serve fills in the issuer and hosts only when neither form is given.
    assert conf_files.given(env, "AUTHSERVER_ISSUER") is expected


def test_env_names_lists_every_declaration_once():
    names = conf.env_names()
    assert len(names) == len(set(names))
    assert {"AUTHSERVER_ENV", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_PKCS11_PIN",
            "AUTHSERVER_ANOMALY_ALERT_EMAILS"} <= set(names)
    assert all(re.fullmatch(r"AUTHSERVER_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|PROMETHEUS_MULTIPROC_DIR", name) for name in names)
