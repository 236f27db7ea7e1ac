"""authserver.conf: every AUTHSERVER_* variable parsed once, with one default, refused by name when bad."""

from __future__ import annotations

import os
import re
from dataclasses import FrozenInstanceError, fields
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "AUTHSERVER_ENV": "production",
    "AUTHSERVER_SECRET_KEY": "x" * 64,
    "DATABASE_URL": "postgres://u:p@localhost/db",
    "REDIS_URL": "redis://localhost:6379/0",
    "AUTHSERVER_ISSUER": "https://auth.example.com",
    "AUTHSERVER_ALLOWED_HOSTS": "auth.example.com",
}


def _env_fields(cls: type = conf.AuthServerConfig) -> list[Any]:
    out = []
    for f in fields(cls):
        if "section" in f.metadata:
            out.extend(_env_fields(f.metadata["section"]))
        elif "env" in f.metadata:
            out.append(f)
    return out


def test_defaults():
    config = conf.load({}, testing=False)
    assert config.env == "development" and not config.production and not config.debug
    assert config.issuer == "https://127.0.0.1:8443"
    assert config.allowed_hosts == ("127.0.0.1", "localhost", "[::1]")
    assert config.csrf_trusted_origins == (config.issuer,)
    assert config.data_dir == ROOT / "var"
    assert config.keystore.file == ROOT / "var" / "keystore.json"
    assert config.tokens.access_default_seconds == 600 and config.tokens.refresh_max_seconds == 90 * 86400
    assert config.api_keys.prefix == "ak"
    assert config.rate_limits["login.ip"] == ("30/300", "closed")
    assert not config.ssl_redirect and config.hsts_seconds == 0
    assert config.email_backend.endswith("filebased.EmailBackend")


def test_production_defaults():
    config = conf.load(PRODUCTION, testing=False)
    assert config.production and config.ssl_redirect and config.hsts_seconds == 31536000
    assert config.email_backend.endswith("smtp.EmailBackend")
    assert config.allowed_hosts == ("auth.example.com",)


def test_the_object_is_frozen():
    config = conf.load({}, testing=False)
    with pytest.raises(FrozenInstanceError):
        config.issuer = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.rate_limits["login.ip"] = ("1000/1", "local")  # type: ignore[index]


@pytest.mark.parametrize(("env", "path", "expected"), [
    ({"AUTHSERVER_ACCESS_TOKEN_SECONDS": " 300 "}, "tokens.access_default_seconds", 300),
    ({"AUTHSERVER_ACCESS_TOKEN_SECONDS": ""}, "tokens.access_default_seconds", 600),  # empty: the default
    ({"AUTHSERVER_DEBUG": "on"}, "debug", True),
    ({"AUTHSERVER_DB_PREPARED_STATEMENTS": "0"}, "db_prepared_statements", False),
    ({"AUTHSERVER_DB_PREPARED_STATEMENTS": "False"}, "db_prepared_statements", False),
    ({"AUTHSERVER_ISSUER": "https://auth.example.com/"}, "issuer", "https://auth.example.com"),
    ({"AUTHSERVER_ADMIN_PATH": "/ops/"}, "admin_path", "ops"),
    ({"AUTHSERVER_ALLOWED_HOSTS": "a.example, b.example,"}, "allowed_hosts", ("a.example", "b.example")),
    ({"AUTHSERVER_ISSUER": "https://a.example"}, "csrf_trusted_origins", ("https://a.example",)),
    ({"AUTHSERVER_KEYSTORE": " FILE "}, "keystore.backend", "file"),
    ({"AUTHSERVER_DATA_DIR": "/srv/auth"}, "keystore.file", Path("/srv/auth/keystore.json")),
    ({"AUTHSERVER_LOG_LEVEL": "warning"}, "log_level", "WARNING"),
    ({"AUTHSERVER_ANOMALY_QUANTILE": "0.9"}, "anomaly.quantile", 0.9),
    ({"AUTHSERVER_ANOMALY_ALERT_EMAILS": "a@x.test,b@x.test"}, "anomaly.alert_emails", ("a@x.test", "b@x.test")),
    ({"AUTHSERVER_CRYPTO_ROTATION_BATCH_PAUSE": "0.2"}, "jobs.crypto_rotation_batch_pause", 0.2),
    ({"AUTHSERVER_API_KEY_PREFIX": "acme2"}, "api_keys.prefix", "acme2"),
    ({"AUTHSERVER_SSL_REDIRECT": "1"}, "ssl_redirect", True),
    ({}, "endpoints.mode", "fixed"),
    ({"AUTHSERVER_ENDPOINTS": " Rotating "}, "endpoints.mode", "rotating"),
    ({}, "endpoints.window_seconds", 86400),
    ({"AUTHSERVER_ENDPOINTS_WINDOW_SECONDS": "3600"}, "endpoints.window_seconds", 3600),
    ({"AUTHSERVER_API_PATH": "/api/v1/"}, "endpoints.api_path", "api/v1"),
    ({}, "endpoints.api_path", ""),  # generated in the data directory
])
def test_parsing(env, path, expected):
    value: Any = conf.load(env, testing=False)
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected


def test_rate_limit_overrides():
    limits = conf.load({"AUTHSERVER_RATE_LIMITS": '{"token.ip": "600/60", "login.ip": ["5/60", "local"],'
                                                  ' "new.policy": ["1/1", "process"]}'}, testing=False).rate_limits
    assert limits["token.ip"] == ("600/60", "local")  # a string keeps the policy's failure mode
    assert limits["login.ip"] == ("5/60", "local")
    assert limits["new.policy"] == ("1/1", "process")
    assert limits["api.client"] == conf.RATE_LIMIT_DEFAULTS["api.client"]


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTHSERVER_ACCESS_TOKEN_SECONDS": "10m"}, "AUTHSERVER_ACCESS_TOKEN_SECONDS must be an integer"),
    ({"AUTHSERVER_ACCESS_TOKEN_SECONDS": "0"}, "AUTHSERVER_ACCESS_TOKEN_SECONDS must be at least 1"),
    ({"AUTHSERVER_API_KEY_GRACE_SECONDS": "-1"}, "AUTHSERVER_API_KEY_GRACE_SECONDS must be at least 0"),
    ({"AUTHSERVER_COMPROMISE_BATCH_SIZE": "0"}, "AUTHSERVER_COMPROMISE_BATCH_SIZE must be at least 1"),
    ({"AUTHSERVER_CLEANUP_PAUSE_RATIO": "fast"}, "AUTHSERVER_CLEANUP_PAUSE_RATIO must be a number"),
    ({"AUTHSERVER_ANOMALY_QUANTILE": "1.5"}, "AUTHSERVER_ANOMALY_QUANTILE must be between 0 and 1"),
    ({"AUTHSERVER_DEBUG": "maybe"}, "AUTHSERVER_DEBUG must be a boolean"),
    ({"AUTHSERVER_LOG_LEVEL": "LOUD"}, "AUTHSERVER_LOG_LEVEL must be a logging level"),
    ({"AUTHSERVER_KEYSTORE": "vault"}, "AUTHSERVER_KEYSTORE must be 'file' or 'pkcs11'"),
    ({"AUTHSERVER_KEYSTORE": "pkcs11", "AUTHSERVER_PKCS11_MODULE": "/lib/softhsm2.so"},
     "AUTHSERVER_KEYSTORE=pkcs11 requires"),
    ({"AUTHSERVER_API_KEY_PREFIX": "at"}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_API_KEY_PREFIX": "Acme"}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_API_KEY_PREFIX": "1ak"}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_API_KEY_PREFIX": "a" * 17}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_API_KEY_PREFIX": "dc"}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_ENDPOINTS": "random"}, "AUTHSERVER_ENDPOINTS must be one of fixed, rotating"),
    ({"AUTHSERVER_ENDPOINTS_WINDOW_SECONDS": "0"}, "AUTHSERVER_ENDPOINTS_WINDOW_SECONDS must be at least 1"),
    ({"AUTHSERVER_ENDPOINTS_WINDOW_SECONDS": "1d"}, "AUTHSERVER_ENDPOINTS_WINDOW_SECONDS must be an integer"),
    ({"AUTHSERVER_API_PATH": "api v1"}, "AUTHSERVER_API_PATH must be a URL path"),
    ({"AUTHSERVER_API_PATH": "api/../admin"}, "AUTHSERVER_API_PATH must be a URL path"),
    ({"AUTHSERVER_API_PATH": "a//b"}, "AUTHSERVER_API_PATH must be a URL path"),
    ({"AUTHSERVER_RATE_LIMITS": "{not json"}, "AUTHSERVER_RATE_LIMITS must be a JSON object"),
    ({"AUTHSERVER_RATE_LIMITS": '["600/60"]'}, "AUTHSERVER_RATE_LIMITS must be a JSON object"),
    ({"AUTHSERVER_RATE_LIMITS": '{"token.ip": "0/60"}'}, "AUTHSERVER_RATE_LIMITS: bad policy token.ip"),
    ({"AUTHSERVER_RATE_LIMITS": '{"token.ip": ["60/60", "open"]}'}, "AUTHSERVER_RATE_LIMITS: bad policy token.ip"),
    ({"AUTHSERVER_RATE_LIMITS": '{"token.ip": ["60/60"]}'}, "AUTHSERVER_RATE_LIMITS: bad policy token.ip"),
    ({"AUTHSERVER_RATE_LIMITS": '{"no.such": "60/60"}'}, "AUTHSERVER_RATE_LIMITS: bad policy no.such"),
])
def test_bad_values_are_refused_by_name(env, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        conf.load(env, testing=False)


@pytest.mark.parametrize("missing", sorted(PRODUCTION.keys() - {"AUTHSERVER_ENV"}))
@pytest.mark.parametrize("blank", ["", "   "])
def test_production_requires_its_secrets_and_services(missing, blank):
    with pytest.raises(ImproperlyConfigured, match=f"{missing} must be set when AUTHSERVER_ENV=production"):
        conf.load({**PRODUCTION, missing: blank}, testing=False)


@pytest.mark.parametrize(("env", "message"), [
    ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "production requires a PostgreSQL DATABASE_URL"),
    ({"AUTHSERVER_DEBUG": "1"}, "AUTHSERVER_DEBUG must be off in production"),
    ({"AUTHSERVER_ALLOWED_HOSTS": " , "}, "AUTHSERVER_ALLOWED_HOSTS must be set"),
])
def test_production_refuses(env, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        conf.load({**PRODUCTION, **env}, testing=False)


def test_every_variable_has_one_declaration_and_documented_names_are_read():
    names = [f.metadata["env"] for f in _env_fields()]
    assert len(names) == len(set(names))
    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = set(re.findall(r"`((?:AUTHSERVER_|DATABASE_URL|REDIS_URL)[A-Z0-9_]*)`", "\n".join(table)))
    assert documented and documented <= set(names)


def test_flat_settings_name_every_project_setting_once():
    config = conf.load({"AUTHSERVER_ANOMALY_ALERT_EMAILS": "ops@x.test"}, testing=False)
    flat = conf.flat_settings(config)
    declared = [f.metadata["flat"] for f in _env_fields() if f.metadata["flat"]]
    assert len(declared) == len(set(declared))
    assert set(flat) == {*declared, "MANAGEMENT_API_AUDIENCE"}
    assert flat["MANAGEMENT_API_AUDIENCE"] == f"{config.issuer}/api"
    assert flat["ANOMALY_ALERT_EMAILS"] == ["ops@x.test"] and isinstance(flat["RATE_LIMITS"], dict)


def test_django_settings_come_from_the_object(settings):
    config = conf.load(os.environ)
    for name, value in conf.flat_settings(config).items():
        assert getattr(settings, name) == value, name


def test_secrets_stay_out_of_repr():
    config = conf.load({**PRODUCTION, "AUTHSERVER_PKCS11_PIN": "1234-pin"}, testing=False)
    text = repr(config)
    for secret in ("x" * 64, "u:p@localhost", "1234-pin"):
        assert secret not in text
