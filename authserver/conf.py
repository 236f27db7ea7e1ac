"""The project's own configuration: every ``AUTHSERVER_*`` variable, its type and its default, in one place.

``load(os.environ)`` parses the environment once into a frozen :class:`AuthServerConfig`; it reads
every variable before it refuses, and its one ConfigurationErrors lists each bad one: name, what is
wrong, how to fix it. Any variable may be given as a file,
``<NAME>_FILE`` (authserver/conf_files.py); apart from reading those, nothing here touches disk:
``authserver.datadir.prepare()`` creates the data directory and its generated secrets, and
``authserver/settings.py`` turns the object into Django settings.

Each field is declared with :func:`var`: the environment variable it comes from, its default (a
second one for ``AUTHSERVER_ENV=production`` where they differ), its parser, and the flat Django
setting name code reads it under (``settings.ACCESS_TOKEN_MAX_SECONDS``). The flat names stay
because tests override them one at a time with pytest-django's ``settings`` fixture.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from authserver import conf_files
from authserver.conf_cimd import CimdConfig
from authserver.conf_device import DeviceConfig
from authserver.conf_endpoints import EndpointsConfig
from authserver.conf_limits import RATE_LIMIT_DEFAULTS, parse_rate_limits
from authserver.conf_parsers import (  # var and section: the declarations the sections share
    ConfigurationErrors,
    Problem,
    _api_key_prefix,
    _bool,
    _float,
    _http_url,
    _int,
    _list,
    _log_level,
    _lower,
    _one_of,
    _path,
    _trusted_proxies,
    problem,
    section,
    var,
)
from authserver.conf_registration import RegistrationConfig
from authserver.conf_revocations import RevocationStreamConfig

BASE_DIR = Path(__file__).resolve().parent.parent

# --- sections -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TokenConfig:
    """OAuth token lifetimes (RFC 6749 §4.2.2, §6) and the retention of used codes."""

    access_default_seconds: int = var("AUTHSERVER_ACCESS_TOKEN_SECONDS", 600, _int(1),
                                      flat="ACCESS_TOKEN_DEFAULT_SECONDS")
    access_max_seconds: int = var("AUTHSERVER_ACCESS_TOKEN_MAX_SECONDS", 3600, _int(1), flat="ACCESS_TOKEN_MAX_SECONDS")
    refresh_default_seconds: int = var("AUTHSERVER_REFRESH_TOKEN_SECONDS", 30 * 86400, _int(1),
                                       flat="REFRESH_TOKEN_DEFAULT_SECONDS")
    refresh_max_seconds: int = var("AUTHSERVER_REFRESH_TOKEN_MAX_SECONDS", 90 * 86400, _int(1),
                                   flat="REFRESH_TOKEN_MAX_SECONDS")
    client_secret_grace_seconds: int = var("AUTHSERVER_CLIENT_SECRET_GRACE_SECONDS", 86400, _int(),
                                           flat="CLIENT_SECRET_GRACE_SECONDS")
    # Used codes are kept this long after expiry so that a replayed code is still recognised and the
    # tokens it issued revoked (RFC 9700 §4.5.3), then the cleanup job deletes them.
    grant_retention_seconds: int = var("AUTHSERVER_GRANT_RETENTION_SECONDS", 86400, _int(),
                                       flat="GRANT_RETENTION_SECONDS")


@dataclass(frozen=True, kw_only=True)
class ApiKeyConfig:
    """API keys (keys/); a deployment-specific prefix lets secret scanners tell your keys apart."""

    prefix: str = var("AUTHSERVER_API_KEY_PREFIX", "ak", _api_key_prefix, flat="API_KEY_PREFIX")
    default_lifetime_seconds: int = var("AUTHSERVER_API_KEY_DEFAULT_LIFETIME_SECONDS", 90 * 86400, _int(1),
                                        flat="API_KEY_DEFAULT_LIFETIME_SECONDS")
    max_lifetime_seconds: int = var("AUTHSERVER_API_KEY_MAX_LIFETIME_SECONDS", 365 * 86400, _int(1),
                                    flat="API_KEY_MAX_LIFETIME_SECONDS")
    grace_seconds: int = var("AUTHSERVER_API_KEY_GRACE_SECONDS", 86400, _int(), flat="API_KEY_GRACE_SECONDS")
    expiry_warning_seconds: int = var("AUTHSERVER_API_KEY_EXPIRY_WARNING_SECONDS", 7 * 86400, _int(),
                                      flat="API_KEY_EXPIRY_WARNING_SECONDS")
    # Token exchange (RFC 8693): an API key traded for an access token of at most this lifetime.
    exchange_token_seconds: int = var("AUTHSERVER_API_KEY_EXCHANGE_TOKEN_SECONDS", 600, _int(1),
                                      flat="API_KEY_EXCHANGE_TOKEN_SECONDS")


@dataclass(frozen=True, kw_only=True)
class KeyStoreConfig:
    """Where the key-encryption keys live (authserver/crypto): a 0600 file in the data directory, or an HSM."""

    backend: str = var("AUTHSERVER_KEYSTORE", "file", _lower, flat="KEYSTORE")
    file: Path | None = var("AUTHSERVER_KEYSTORE_FILE", None, _path, flat="KEYSTORE_FILE")  # None: data dir
    pkcs11_module: str = var("AUTHSERVER_PKCS11_MODULE", "", flat="PKCS11_MODULE")
    pkcs11_token_label: str = var("AUTHSERVER_PKCS11_TOKEN_LABEL", "", flat="PKCS11_TOKEN_LABEL")
    pkcs11_pin: str = var("AUTHSERVER_PKCS11_PIN", "", flat="PKCS11_PIN", secret=True)
    pkcs11_key_label: str = var("AUTHSERVER_PKCS11_KEY_LABEL", "authserver-kek", flat="PKCS11_KEY_LABEL")
    # How long a process trusts its view of the HSM's key versions; rotation waits this long for stale writers.
    pkcs11_version_cache_seconds: float = var("AUTHSERVER_PKCS11_VERSION_CACHE_SECONDS", 5.0, _float(),
                                              flat="PKCS11_VERSION_CACHE_SECONDS")


@dataclass(frozen=True, kw_only=True)
class CleanupConfig:
    """The expired-token sweep (authserver/oauth/services.py): small batches with pauses between them."""

    batch_size: int = var("AUTHSERVER_CLEANUP_BATCH_SIZE", 1000, _int(1))
    # It pauses this many times as long as each batch took, so it never holds the CPU long.
    pause_ratio: float = var("AUTHSERVER_CLEANUP_PAUSE_RATIO", 3.0, _float(), flat="CLEANUP_PAUSE_RATIO")


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """Batching of the long jobs (tests shrink these to interrupt a job midway)."""

    compromise_batch_size: int = var("AUTHSERVER_COMPROMISE_BATCH_SIZE", 500, _int(1), flat="COMPROMISE_BATCH_SIZE")
    compromise_batch_pause: float = var("AUTHSERVER_COMPROMISE_BATCH_PAUSE", 0.0, _float(),
                                        flat="COMPROMISE_BATCH_PAUSE")
    compromise_stale_seconds: int = var("AUTHSERVER_COMPROMISE_STALE_SECONDS", 60, _int(1),
                                        flat="COMPROMISE_STALE_SECONDS")
    crypto_rotation_batch_size: int = var("AUTHSERVER_CRYPTO_ROTATION_BATCH_SIZE", 200, _int(1),
                                          flat="CRYPTO_ROTATION_BATCH_SIZE")
    crypto_rotation_batch_pause: float = var("AUTHSERVER_CRYPTO_ROTATION_BATCH_PAUSE", 0.0, _float(),
                                             flat="CRYPTO_ROTATION_BATCH_PAUSE")
    crypto_rotation_stale_seconds: float = var("AUTHSERVER_CRYPTO_ROTATION_STALE_SECONDS", 60.0, _float(),
                                               flat="CRYPTO_ROTATION_STALE_SECONDS")
    # Beat runs the audit sealer this often (authserver/audit/sealer.py); audit verify fails once an
    # event has waited longer than the max age (the sealer is not running).
    audit_seal_interval: int = var("AUTHSERVER_AUDIT_SEAL_INTERVAL", 2, _int(1), flat="AUDIT_SEAL_INTERVAL")
    audit_unsealed_max_age: float = var("AUTHSERVER_AUDIT_UNSEALED_MAX_AGE", 60.0, _float(),
                                        flat="AUDIT_UNSEALED_MAX_AGE")
    # Signed checkpoints of the chain head (authserver/audit/checkpoints.py): this often, appended to
    # the file (None: <data dir>/audit-checkpoints.jsonl) and POSTed to the witness, if one is set.
    audit_checkpoint_interval: int = var("AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL", 60, _int(1),
                                         flat="AUDIT_CHECKPOINT_INTERVAL")
    audit_checkpoint_path: Path | None = var("AUTHSERVER_AUDIT_CHECKPOINT_PATH", None, _path,
                                             flat="AUDIT_CHECKPOINT_PATH")
    audit_witness_url: str = var("AUTHSERVER_AUDIT_WITNESS_URL", "", _http_url, flat="AUDIT_WITNESS_URL")


@dataclass(frozen=True, kw_only=True)
class AnomalyConfig:
    """Adaptive rate limits and anomaly detection (authserver/anomaly). Limits are per minute."""

    window_minutes: int = var("AUTHSERVER_ANOMALY_WINDOW_MINUTES", 120, _int(1), flat="ANOMALY_WINDOW_MINUTES")
    warmup_minutes: int = var("AUTHSERVER_ANOMALY_WARMUP_MINUTES", 30, _int(), flat="ANOMALY_WARMUP_MINUTES")
    quantile: float = var("AUTHSERVER_ANOMALY_QUANTILE", 0.99, _float(0, 1), flat="ANOMALY_QUANTILE")
    ewma_alpha: float = var("AUTHSERVER_ANOMALY_EWMA_ALPHA", 0.1, _float(0, 1), flat="ANOMALY_EWMA_ALPHA")
    # limit = factor x the high quantile, between floor and ceiling; new credentials get the default.
    limit_factor: float = var("AUTHSERVER_ANOMALY_LIMIT_FACTOR", 4.0, _float(), flat="ANOMALY_LIMIT_FACTOR")
    limit_floor: int = var("AUTHSERVER_ANOMALY_LIMIT_FLOOR", 60, _int(), flat="ANOMALY_LIMIT_FLOOR")
    limit_ceiling: int = var("AUTHSERVER_ANOMALY_LIMIT_CEILING", 60000, _int(), flat="ANOMALY_LIMIT_CEILING")
    default_limit: int = var("AUTHSERVER_ANOMALY_DEFAULT_LIMIT", 600, _int(), flat="ANOMALY_DEFAULT_LIMIT")
    volume_factor: float = var("AUTHSERVER_ANOMALY_VOLUME_FACTOR", 3.0, _float(), flat="ANOMALY_VOLUME_FACTOR")
    volume_min: int = var("AUTHSERVER_ANOMALY_VOLUME_MIN", 30, _int(), flat="ANOMALY_VOLUME_MIN")
    tighten_factor: float = var("AUTHSERVER_ANOMALY_TIGHTEN_FACTOR", 1.5, _float(), flat="ANOMALY_TIGHTEN_FACTOR")
    tighten_seconds: int = var("AUTHSERVER_ANOMALY_TIGHTEN_SECONDS", 3600, _int(), flat="ANOMALY_TIGHTEN_SECONDS")
    auth_failure_burst: int = var("AUTHSERVER_ANOMALY_AUTH_FAILURE_BURST", 20, _int(1),  # per address/min
                                  flat="ANOMALY_AUTH_FAILURE_BURST")
    invalid_token_burst: int = var("AUTHSERVER_ANOMALY_INVALID_TOKEN_BURST", 50, _int(1),  # per address/min
                                   flat="ANOMALY_INVALID_TOKEN_BURST")
    fishing_burst: int = var("AUTHSERVER_ANOMALY_FISHING_BURST", 100, _int(1),  # inactive answers/RS/min
                             flat="ANOMALY_FISHING_BURST")
    revoked_use_burst: int = var("AUTHSERVER_ANOMALY_REVOKED_USE_BURST", 1, _int(1), flat="ANOMALY_REVOKED_USE_BURST")
    dedupe_minutes: int = var("AUTHSERVER_ANOMALY_DEDUPE_MINUTES", 60, _int(), flat="ANOMALY_DEDUPE_MINUTES")
    traffic_retention_days: int = var("AUTHSERVER_ANOMALY_TRAFFIC_RETENTION_DAYS", 7, _int(1),
                                      flat="ANOMALY_TRAFFIC_RETENTION_DAYS")
    limit_cache_seconds: float = var("AUTHSERVER_ANOMALY_LIMIT_CACHE_SECONDS", 30.0, _float(),
                                     flat="ANOMALY_LIMIT_CACHE_SECONDS")
    alert_emails: tuple[str, ...] = var("AUTHSERVER_ANOMALY_ALERT_EMAILS", (), _list,  # besides the client contact
                                        flat="ANOMALY_ALERT_EMAILS")


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    """Outgoing webhooks (clients/webhooks, Standard Webhooks) and the SMTP server for e-mail."""

    secret_overlap_seconds: int = var("AUTHSERVER_WEBHOOK_SECRET_OVERLAP_SECONDS", 86400, _int(),
                                      flat="WEBHOOK_SECRET_OVERLAP_SECONDS")  # a rotated secret signs on
    allow_http_loopback: bool = var("AUTHSERVER_WEBHOOK_ALLOW_HTTP_LOOPBACK", False, _bool,
                                    flat="WEBHOOK_ALLOW_HTTP_LOOPBACK")  # http:// on loopback: dev only
    smtp_host: str = var("AUTHSERVER_SMTP_HOST", "", flat="EMAIL_HOST")  # set: e-mail goes out by SMTP
    smtp_port: int = var("AUTHSERVER_SMTP_PORT", 0, _int())  # 0: 587 (starttls), 465 (ssl), 25 (none)
    smtp_user: str = var("AUTHSERVER_SMTP_USER", "", flat="EMAIL_HOST_USER")
    smtp_password: str = var("AUTHSERVER_SMTP_PASSWORD", "", flat="EMAIL_HOST_PASSWORD", secret=True)
    smtp_tls: str = var("AUTHSERVER_SMTP_TLS", "starttls", _one_of("starttls", "ssl", "none"))


@dataclass(frozen=True, kw_only=True)
class AuthServerConfig:
    env: str = var("AUTHSERVER_ENV", "development", _lower)
    debug: bool = var("AUTHSERVER_DEBUG", False, _bool)
    data_dir: Path = var("AUTHSERVER_DATA_DIR", BASE_DIR / "var", _path, flat="DATA_DIR")
    # Production refuses to start without its secrets rather than inventing one (ASVS 13.3); elsewhere
    # an empty value means "generated in the data directory".
    secret_key: str = var("AUTHSERVER_SECRET_KEY", "", secret=True, required_in_production=True,
                          fix='a long random value: python -c "import secrets; print(secrets.token_urlsafe(48))"')
    # The issuer is the identity of this server (RFC 8414 §2, RFC 9207); it must be stable and is
    # never derived from the Host header.
    issuer: str = var("AUTHSERVER_ISSUER", "https://127.0.0.1:8443", lambda _, raw: raw.rstrip("/"),
                      flat="ISSUER", required_in_production=True, fix="this server's public https:// URL")
    allowed_hosts: tuple[str, ...] = var("AUTHSERVER_ALLOWED_HOSTS", ("127.0.0.1", "localhost", "[::1]"), _list,
                                         production=(), required_in_production=True,
                                         fix="the host names clients use to reach this server, comma-separated")
    csrf_trusted_origins: tuple[str, ...] = var("AUTHSERVER_CSRF_TRUSTED_ORIGINS", (), _list)  # (): the issuer
    database_url: str = var("DATABASE_URL", "", flat="DATABASE_URL", secret=True, required_in_production=True,
                            fix="postgres://USER:PASSWORD@HOST:5432/NAME")
    redis_url: str = var("REDIS_URL", "", flat="REDIS_URL", secret=True, required_in_production=True,
                         fix="redis://HOST:6379/0")
    # The hot lookups run as prepared statements on PostgreSQL (authserver/db/__init__.py). Off behind a
    # transaction-pooling PgBouncer older than 1.21.
    db_prepared_statements: bool = var("AUTHSERVER_DB_PREPARED_STATEMENTS", True, _bool,
                                       flat="DB_PREPARED_STATEMENTS")
    # Bounded waits (issue 12): how long a statement may wait for a lock, and run, before it fails and
    # the request answers 503 temporarily_unavailable instead of hanging. PostgreSQL: the session's
    # lock_timeout and statement_timeout; SQLite: the busy timeout (the lock wait only). 0: authserver
    # sets none (PostgreSQL: the role's or database's own setting applies; SQLite: Python's 5 s).
    db_lock_timeout: float = var("AUTHSERVER_DB_LOCK_TIMEOUT", 3.0, _float(), flat="DB_LOCK_TIMEOUT")
    db_statement_timeout: float = var("AUTHSERVER_DB_STATEMENT_TIMEOUT", 10.0, _float(), flat="DB_STATEMENT_TIMEOUT")
    celery_eager: bool = var("AUTHSERVER_CELERY_EAGER", False, _bool)
    # The admin lives at an unguessable path (docs/decisions/0009); "" means generated in the data dir.
    admin_path: str = var("AUTHSERVER_ADMIN_PATH", "", lambda _, raw: raw.strip("/"))
    # Staff passkeys (authserver.passkeys; W3C WebAuthn Level 2 §5.1.3 / §7.1 steps 9 and 13): the relying
    # party id and the origins a ceremony may come from. Empty: the host name and origin of the request
    # (already checked against AUTHSERVER_ALLOWED_HOSTS), so a passkey works wherever the admin is served.
    webauthn_rp_id: str = var("AUTHSERVER_WEBAUTHN_RP_ID", "", _lower, flat="WEBAUTHN_RP_ID")
    webauthn_origins: tuple[str, ...] = var("AUTHSERVER_WEBAUTHN_ORIGINS", (), _list, flat="WEBAUTHN_ORIGINS")
    # Sensitive admin actions (reveal-once secrets, compromise response, second-factor changes) ask
    # for the second factor again when the last one passed is older than this (authserver.staff.stepup).
    staff_step_up_seconds: int = var("AUTHSERVER_STAFF_STEP_UP_SECONDS", 300, _int(1), flat="STAFF_STEP_UP_SECONDS")
    behind_proxy: bool = var("AUTHSERVER_BEHIND_PROXY", False, _bool)
    # The proxies whose X-Forwarded-For / Forwarded / X-Forwarded-Proto are believed (authserver.netaddr);
    # empty: none, every address-based control sees the peer.
    trusted_proxies: tuple[str, ...] = var("AUTHSERVER_TRUSTED_PROXIES", (), _trusted_proxies, flat="TRUSTED_PROXIES")
    ssl_redirect: bool = var("AUTHSERVER_SSL_REDIRECT", False, _bool, production=True)
    hsts_seconds: int = var("AUTHSERVER_HSTS_SECONDS", 0, _int(), production=31536000)
    email_backend: str = var("AUTHSERVER_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend",
                             production="django.core.mail.backends.smtp.EmailBackend")
    from_email: str = var("AUTHSERVER_FROM_EMAIL", "authserver@localhost")
    log_level: str = var("AUTHSERVER_LOG_LEVEL", "INFO", _log_level)
    # /metrics answers only to "Authorization: Bearer <this>"; unset, it is a 404 like any unknown path.
    metrics_token: str = var("AUTHSERVER_METRICS_TOKEN", "", flat="METRICS_TOKEN", secret=True)
    # prometheus-client's multi-process directory (its own variable name); None: <data dir>/metrics.
    metrics_dir: Path | None = var("PROMETHEUS_MULTIPROC_DIR", None, _path, flat="PROMETHEUS_MULTIPROC_DIR")
    rate_limits: Mapping[str, tuple[str, str]] = var("AUTHSERVER_RATE_LIMITS", RATE_LIMIT_DEFAULTS, parse_rate_limits,
                                                     flat="RATE_LIMITS")
    tokens: TokenConfig = section(TokenConfig)
    api_keys: ApiKeyConfig = section(ApiKeyConfig)
    keystore: KeyStoreConfig = section(KeyStoreConfig)
    cleanup: CleanupConfig = section(CleanupConfig)
    jobs: JobConfig = section(JobConfig)
    anomaly: AnomalyConfig = section(AnomalyConfig)
    webhooks: WebhookConfig = section(WebhookConfig)
    revocations: RevocationStreamConfig = section(RevocationStreamConfig)
    endpoints: EndpointsConfig = section(EndpointsConfig)
    cimd: CimdConfig = section(CimdConfig)
    device: DeviceConfig = section(DeviceConfig)
    registration: RegistrationConfig = section(RegistrationConfig)
    # Not from the environment: the test suite keeps its own state apart (tests/datadir_plugin.py).
    testing: bool = False

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def broker_dir(self) -> Path:
        """Kombu's filesystem transport folders (the embedded broker, used when REDIS_URL is unset)."""
        return self.data_dir / "broker"

    @property
    def static_root(self) -> Path:
        return self.data_dir / "static"

    @property
    def management_api_audience(self) -> str:
        return f"{self.issuer}/api"

    def postgres_session_options(self, existing: str = "") -> str:
        """libpq ``options`` for every session: the URL's own, then the bounded waits (set at
        connection start, so no extra round trip)."""
        bounds = [f"-c {name}={max(1, round(seconds * 1000))}ms" for name, seconds in (
            ("lock_timeout", self.db_lock_timeout), ("statement_timeout", self.db_statement_timeout)) if seconds]
        return " ".join(filter(None, [existing, *bounds]))


def _load_section(cls: type, environ: Mapping[str, str], production: bool, problems: list[Problem]) -> Any:
    values: dict[str, Any] = {}
    for f in fields(cls):
        meta = f.metadata
        if "section" in meta:
            values[f.name] = _load_section(meta["section"], environ, production, problems)
        elif "env" in meta:
            name, raw = meta["env"], environ.get(meta["env"], "").strip()
            if any(p.name == name for p in problems):  # its _FILE could not be read: said already
                continue
            if raw:
                try:
                    values[f.name] = meta["parse"](name, raw)
                except ImproperlyConfigured as exc:
                    problems += problem(exc, name, "give a valid value, or unset it for the default")
                    continue
            elif production and meta["production"] is not MISSING:
                values[f.name] = meta["production"]
            if production and meta["required"] and not values.get(f.name):
                problems.append(Problem(name, f"{name} must be set when AUTHSERVER_ENV=production",
                                        f"set it (or {name}_FILE) to {meta['fix']}"))
    return cls(**values)


def env_names(cls: type = AuthServerConfig) -> list[str]:
    """Every environment variable the configuration declares."""
    names: list[str] = []
    for f in fields(cls):
        if "section" in f.metadata:
            names += env_names(f.metadata["section"])
        elif "env" in f.metadata:
            names.append(f.metadata["env"])
    return names


def load(environ: Mapping[str, str], *, testing: bool | None = None) -> AuthServerConfig:
    """Parse and validate the environment; raises one ConfigurationErrors naming every bad variable."""
    problems: list[Problem] = []
    environ = conf_files.resolve(environ, env_names(), problems)
    if testing is None:
        testing = "pytest" in sys.modules or environ.get("AUTHSERVER_TESTING") == "1"
    production = environ.get("AUTHSERVER_ENV", "").strip().lower() == "production"
    config: AuthServerConfig = _load_section(AuthServerConfig, environ, production, problems)
    config = replace(
        config, testing=testing,
        csrf_trusted_origins=config.csrf_trusted_origins or (config.issuer,),
        keystore=replace(config.keystore, file=config.keystore.file or config.data_dir / "keystore.json"),
        metrics_dir=config.metrics_dir or config.data_dir / "metrics",
    )
    problems += _combinations(config, production)
    if problems:
        raise ConfigurationErrors(problems)
    return config


def _combinations(config: AuthServerConfig, production: bool) -> list[Problem]:
    """What is wrong with the values together (each one alone parsed)."""
    found: list[Problem] = []
    keystore, hooks = config.keystore, config.webhooks
    if keystore.backend not in {"file", "pkcs11"}:
        found.append(Problem("AUTHSERVER_KEYSTORE", "AUTHSERVER_KEYSTORE must be 'file' or 'pkcs11'",
                             "set file (the default) or pkcs11"))
    if keystore.backend == "pkcs11":
        found += [Problem(name, f"AUTHSERVER_KEYSTORE=pkcs11 requires {name}", "set it, or AUTHSERVER_KEYSTORE=file")
                  for name in ("AUTHSERVER_PKCS11_MODULE", "AUTHSERVER_PKCS11_TOKEN_LABEL", "AUTHSERVER_PKCS11_PIN")
                  if not getattr(keystore, name.removeprefix("AUTHSERVER_").lower())]
    if production and config.database_url and not config.database_url.startswith(("postgres://", "postgresql://")):
        found.append(Problem("DATABASE_URL", "production requires a PostgreSQL DATABASE_URL",
                             "set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/NAME"))
    if production and config.debug:
        found.append(Problem("AUTHSERVER_DEBUG", "AUTHSERVER_DEBUG must be off in production", "unset it"))
    if bool(hooks.smtp_user) != bool(hooks.smtp_password):
        found.append(Problem("AUTHSERVER_SMTP_PASSWORD", "AUTHSERVER_SMTP_USER and AUTHSERVER_SMTP_PASSWORD go "
                             "together", "set both, or neither"))
    if production and hooks.smtp_password and hooks.smtp_tls == "none":
        found.append(Problem("AUTHSERVER_SMTP_TLS", "AUTHSERVER_SMTP_TLS=none would send the SMTP password in clear",
                             "set starttls or ssl"))
    if production and hooks.allow_http_loopback:
        found.append(Problem("AUTHSERVER_WEBHOOK_ALLOW_HTTP_LOOPBACK",
                             "AUTHSERVER_WEBHOOK_ALLOW_HTTP_LOOPBACK is for development only", "unset it"))
    if production and config.cimd.allow_private:
        found.append(Problem("AUTHSERVER_CIMD_ALLOW_PRIVATE", "AUTHSERVER_CIMD_ALLOW_PRIVATE would let any "
                             "client_id URL reach internal addresses", "unset it (it is for tests and labs)"))
    return found


def flat_settings(config: AuthServerConfig) -> dict[str, Any]:
    """The Django settings code reads (``settings.ISSUER``…), as the plain types Django settings hold."""
    out: dict[str, Any] = {"MANAGEMENT_API_AUDIENCE": config.management_api_audience}

    def walk(obj: Any) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            if "section" in f.metadata:
                walk(value)
            elif f.metadata.get("flat"):
                if isinstance(value, tuple):
                    value = list(value)
                elif isinstance(value, Mapping):
                    value = dict(value)
                out[f.metadata["flat"]] = value

    walk(config)
    return out
