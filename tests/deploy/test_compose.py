"""compose.yaml runs every role the way docs/operations.md says: read as data, not started.

PyYAML (a dependency of the toolchain already) reads the file with its ``<<`` merge keys resolved,
as compose does; interpolation (``${PUBLIC_HOST}``) is left as text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from authserver import conf
from tests.deploy.envvars import PLANNED, ROOT, read_by_code

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text()
APP_ROLES = ("migrate", "web", "worker", "beat")
SECRET_VARIABLES = {"AUTHSERVER_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_PKCS11_PIN",
                    "AUTHSERVER_METRICS_TOKEN", "AUTHSERVER_ADMIN_PATH", "POSTGRES_PASSWORD"}


def _role(service: dict[str, Any]) -> str | None:
    command = service.get("command")
    return command[0] if isinstance(command, list) and command and command[0] in APP_ROLES else None


def _replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def _by_role(role: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in SERVICES.items() if _role(s) == role and "profiles" not in s}


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source, for the short volume syntax used throughout."""
    return {parts[1]: parts[0] for parts in (v.split(":") for v in service.get("volumes", []))}


def test_every_role_is_there_in_its_number():
    assert SERVICES["postgres"]["image"] == "postgres:15"
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert SERVICES["proxy"]["image"].startswith("caddy:")
    counts = {role: sum(_replicas(s) for s in _by_role(role).values()) for role in APP_ROLES}
    assert counts == {"migrate": 1, "web": 2, "worker": 2, "beat": 1}
    # Two web services (not replicas) so that the proxy probes and routes to each one by name.
    assert sorted(_by_role("web")) == ["web-1", "web-2"]


def test_only_the_migrate_role_migrates():
    (migrate,) = _by_role("migrate").values()
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "migrate" not in " ".join(map(str, service.get("command", []))), name
            assert "entrypoint" not in service, name


@pytest.mark.parametrize("role", ["web", "worker", "beat"])
def test_app_roles_wait_for_the_migration_and_healthy_services(role):
    for name, service in _by_role(role).items():
        assert _depends(service) == {"postgres": "service_healthy", "redis": "service_healthy",
                                     "migrate": "service_completed_successfully"}, name


def test_the_proxy_routes_only_to_ready_web_nodes():
    proxy = SERVICES["proxy"]
    assert _depends(proxy) == {name: "service_healthy" for name in _by_role("web")}
    assert _mounts(proxy)["/etc/caddy/Caddyfile"] == "./deploy/Caddyfile"
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", CADDYFILE)
    assert upstreams and upstreams.group(1).split() == [f"{name}:8000" for name in sorted(_by_role("web"))]
    assert re.search(r"^\s*health_uri /readyz$", CADDYFILE, re.M)
    # The app sees exactly the peer's address and the scheme; whatever the client sent is replaced.
    assert re.search(r"^\s*header_up X-Forwarded-For \{remote_host\}$", CADDYFILE, re.M)
    assert re.search(r"^\s*header_up X-Forwarded-Proto \{scheme\}$", CADDYFILE, re.M)
    assert re.search(r"^\s*respond @internal 404$", CADDYFILE, re.M)  # /livez, /readyz, /metrics stay inside


def test_trusted_proxies_is_the_proxys_network_and_only_it():
    edge = COMPOSE["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    for role in APP_ROLES:
        for name, service in _by_role(role).items():
            assert service["environment"]["AUTHSERVER_TRUSTED_PROXIES"] == edge, name
    on_edge = {name for name, s in SERVICES.items() if "edge" in s.get("networks", [])}
    assert on_edge == {"proxy", *_by_role("web")}
    assert COMPOSE["networks"]["backend"]["internal"] is True
    assert "ports" not in SERVICES["postgres"] and "ports" not in SERVICES["redis"]
    assert [name for name, s in SERVICES.items() if "ports" in s] == ["proxy"]


def test_every_role_shares_the_audit_checkpoint_volume():
    # One checkpoint file: each worker appends to it, and audit verify from any role reads it.
    assert "audit-checkpoints" in COMPOSE["volumes"]
    checked = 0
    for role in APP_ROLES:
        for name, service in _by_role(role).items():
            assert _mounts(service).get("/audit") == "audit-checkpoints", name
            assert service["environment"]["AUTHSERVER_AUDIT_CHECKPOINT_PATH"].startswith("/audit/"), name
            checked += 1
    assert checked >= 4


def test_every_role_shares_the_key_store_volume():
    assert "keystore" in COMPOSE["volumes"]
    for role in APP_ROLES:
        for name, service in _by_role(role).items():
            assert _mounts(service).get("/keystore") == "keystore", name
            assert service["environment"]["AUTHSERVER_KEYSTORE_FILE"].startswith("/keystore/"), name
    assert _mounts(SERVICES["backup"])["/keystore"] == "keystore"  # backups are wrapped by the same KEK


def test_secrets_come_from_files():
    declared = COMPOSE["secrets"]
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        assert not SECRET_VARIABLES & set(environment), f"{name} sets a secret as a plain value"
        for variable, value in environment.items():
            assert not re.search(r"://[^/]*@", str(value)), f"{name}: {variable} holds a credential"
            if variable.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []), f"{name}: {variable} names an unmounted secret"
                assert declared[secret]["file"].startswith("./deploy/secrets/")
    web_environment = SERVICES["web-1"]["environment"]
    for variable in ("AUTHSERVER_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AUTHSERVER_ADMIN_PATH"):
        assert web_environment[f"{variable}_FILE"].startswith("/run/secrets/"), variable


def test_compose_sets_only_variables_something_reads():
    read = read_by_code() | PLANNED
    for role in APP_ROLES:
        for name, service in _by_role(role).items():
            for variable in service["environment"]:
                base = variable.removesuffix("_FILE") if variable.removesuffix("_FILE") in read else variable
                assert base in read, f"{name}: nothing reads {variable}"


def test_production_settings_for_every_app_role():
    for role in APP_ROLES:
        for name, service in _by_role(role).items():
            environment = service["environment"]
            assert environment["AUTHSERVER_ENV"] == "production", name
            assert environment["AUTHSERVER_ISSUER"].startswith("https://"), name
            assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
    assert set(conf.env_names()) >= {"AUTHSERVER_ENV", "AUTHSERVER_ISSUER"}


@pytest.mark.parametrize(("service", "probe"), [
    ("postgres", "pg_isready"),
    ("redis", "redis-cli ping"),
    ("web-1", "/livez"),
    ("web-2", "/livez"),
    ("worker", "inspect ping"),
    ("proxy", "reverse_proxy/upstreams"),
])
def test_health_checks(service, probe):
    check = SERVICES[service]["healthcheck"]
    assert probe in " ".join(check["test"])
    assert check["interval"] and check["retries"] >= 3


def test_redis_persists_with_an_append_only_file():
    redis = SERVICES["redis"]
    assert _mounts(redis)["/usr/local/etc/redis/redis.conf"] == "./deploy/redis.conf"
    assert _mounts(redis)["/data"] == "redisdata"
    config = (ROOT / "deploy" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", config, re.M) and re.search(r"^maxmemory-policy noeviction$", config, re.M)
    assert _mounts(SERVICES["postgres"])["/var/lib/postgresql/data"] == "pgdata"


def test_files_compose_names_exist():
    for path in ("deploy/Caddyfile", "deploy/redis.conf", "deploy/init-secrets.sh", "Dockerfile"):
        assert (ROOT / path).is_file(), path
    script = (ROOT / "deploy" / "init-secrets.sh").read_text()
    for secret in COMPOSE["secrets"]:
        assert re.search(rf"^put {secret} ", script, re.M), f"init-secrets.sh does not create {secret}"
