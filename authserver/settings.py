"""Settings for authserver, driven entirely by the environment.

Nothing set: embedded defaults (SQLite, local-memory cache, a filesystem Celery broker, secrets in
the data directory), so ``uv run manage.py serve`` works on a fresh clone. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis. ``AUTHSERVER_ENV=production`` refuses to start
unless every secret and service it needs is configured explicitly.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from authserver.datadir import BASE_DIR, data_dir, read_or_create_secret

ENV = os.environ.get("AUTHSERVER_ENV", "development").strip().lower()
PRODUCTION = ENV == "production"
TESTING = "pytest" in sys.modules or os.environ.get("AUTHSERVER_TESTING") == "1"


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _required(name: str) -> str:
    """Production refuses to start without its secrets rather than inventing one (ASVS 13.3)."""
    value = os.environ.get(name, "").strip()
    if PRODUCTION and not value:
        raise ImproperlyConfigured(f"{name} must be set when AUTHSERVER_ENV=production")
    return value


# The test suite keeps its own state apart from a developer's running server, and each test run
# apart from any other running at the same time (its own secrets, counters, broker folders).
if TESTING and not os.environ.get("AUTHSERVER_DATA_DIR"):
    import atexit
    import shutil
    import tempfile

    (BASE_DIR / "var").mkdir(mode=0o700, exist_ok=True)
    os.environ["AUTHSERVER_DATA_DIR"] = tempfile.mkdtemp(prefix="test-", dir=BASE_DIR / "var")
    atexit.register(shutil.rmtree, os.environ["AUTHSERVER_DATA_DIR"], True)
DATA_DIR: Path = data_dir()

SECRET_KEY = _required("AUTHSERVER_SECRET_KEY") or read_or_create_secret("django-secret-key")
DEBUG = _env_bool("AUTHSERVER_DEBUG", False)

# The issuer is the identity of this server (RFC 8414 §2, RFC 9207); it must be stable and is
# never derived from the Host header.
ISSUER = (_required("AUTHSERVER_ISSUER") or "https://127.0.0.1:8443").rstrip("/")
ALLOWED_HOSTS = _env_list("AUTHSERVER_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("AUTHSERVER_ALLOWED_HOSTS must be set when AUTHSERVER_ENV=production")
if TESTING:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
CSRF_TRUSTED_ORIGINS = _env_list("AUTHSERVER_CSRF_TRUSTED_ORIGINS", [ISSUER])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "authserver.oauth",
    "authserver.accounts",
    "authserver.audit",
    "clients",
    "keys",
    "authserver.crypto",
    "authserver.anomaly",
]
if TESTING:
    INSTALLED_APPS.append("tests.crypto.testapp")  # models with encrypted fields, test database only

MIDDLEWARE = [
    "authserver.handlers.FailClosedMiddleware",
    "authserver.ratelimit.limiter.RateLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "authserver.urls"
WSGI_APPLICATION = "authserver.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
DATABASE_URL = _required("DATABASE_URL")
if DATABASE_URL:
    # Persistent connections with health checks: a connection per request would double the cost
    # of introspection (docs/architecture.md, hot paths).
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
    }
    # One test database per test process, so concurrent runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE transactions take the write lock up front, so concurrent web and
                # worker processes queue instead of failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "CONN_MAX_AGE": 600,
            # A file, not memory, so that a real Celery worker started by a test shares it.
            "TEST": {"NAME": DATA_DIR / "test-db.sqlite3"},
        }
    }
if PRODUCTION and not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("production requires a PostgreSQL DATABASE_URL")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The hot lookups run as prepared statements on PostgreSQL (authserver/db.py). Set 0 behind a
# transaction-pooling PgBouncer older than 1.21.
DB_PREPARED_STATEMENTS = _env_bool("AUTHSERVER_DB_PREPARED_STATEMENTS", True)

# --- Key store (authserver/crypto): where the key-encryption keys live --------------------------
# file: a 0600 key file in the data directory (created on a fresh install only); pkcs11: an HSM.
KEYSTORE = os.environ.get("AUTHSERVER_KEYSTORE", "file").strip().lower()
KEYSTORE_FILE = Path(os.environ.get("AUTHSERVER_KEYSTORE_FILE") or DATA_DIR / "keystore.json")
PKCS11_MODULE = os.environ.get("AUTHSERVER_PKCS11_MODULE", "")
PKCS11_TOKEN_LABEL = os.environ.get("AUTHSERVER_PKCS11_TOKEN_LABEL", "")
PKCS11_PIN = os.environ.get("AUTHSERVER_PKCS11_PIN", "")
PKCS11_KEY_LABEL = os.environ.get("AUTHSERVER_PKCS11_KEY_LABEL", "authserver-kek")
if KEYSTORE not in {"file", "pkcs11"}:
    raise ImproperlyConfigured("AUTHSERVER_KEYSTORE must be 'file' or 'pkcs11'")
if KEYSTORE == "pkcs11" and not (PKCS11_MODULE and PKCS11_TOKEN_LABEL and PKCS11_PIN):
    raise ImproperlyConfigured(
        "AUTHSERVER_KEYSTORE=pkcs11 requires AUTHSERVER_PKCS11_MODULE, AUTHSERVER_PKCS11_TOKEN_LABEL and "
        "AUTHSERVER_PKCS11_PIN")

# --- Cache, broker ------------------------------------------------------------------------------
REDIS_URL = _required("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "authserver",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {"visibility_timeout": 3600}
    if REDIS_URL
    else {
        # Kombu's filesystem transport: a real broker shared by every local process through the
        # data directory, with no server to run (embedded defaults).
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
)
if not REDIS_URL:
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(mode=0o700, parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Tests of the embedded pass run tasks in-process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = _env_bool("AUTHSERVER_CELERY_EAGER", False)

# --- Authentication -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Humans: Argon2id. Machines: our credential hasher (SHA-256 of a ≥256-bit random secret, see
# authserver/hashers.py); PBKDF2 is deliberately absent (docs/decisions/0003-no-password-hashing.md).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "authserver.hashers.CredentialHasher",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"

# --- Security headers and cookies ---------------------------------------------------------------
TLS_TERMINATED_BY_PROXY = _env_bool("AUTHSERVER_BEHIND_PROXY", False)
if TLS_TERMINATED_BY_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env_bool("AUTHSERVER_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = not TESTING
CSRF_COOKIE_SECURE = not TESTING
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("AUTHSERVER_HSTS_SECONDS", 31536000 if PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: Chromium then sends "Origin: null" on form posts and CSRF fails.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- Endpoint paths -----------------------------------------------------------------------------
# The admin lives at an unguessable path by default (docs/decisions/0009-unguessable-admin-path.md): defence in depth
# against scanners, never a substitute for authentication.
ADMIN_PATH = os.environ.get("AUTHSERVER_ADMIN_PATH", "").strip("/") or (
    "admin-" + read_or_create_secret("admin-path", nbytes=12).replace("_", "").replace("-", "")[:16]
)

# --- OAuth --------------------------------------------------------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "clients.Client"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth.RefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth.IDToken"

ACCESS_TOKEN_DEFAULT_SECONDS = int(os.environ.get("AUTHSERVER_ACCESS_TOKEN_SECONDS", 600))
ACCESS_TOKEN_MAX_SECONDS = int(os.environ.get("AUTHSERVER_ACCESS_TOKEN_MAX_SECONDS", 3600))
REFRESH_TOKEN_DEFAULT_SECONDS = int(os.environ.get("AUTHSERVER_REFRESH_TOKEN_SECONDS", 30 * 86400))
REFRESH_TOKEN_MAX_SECONDS = int(os.environ.get("AUTHSERVER_REFRESH_TOKEN_MAX_SECONDS", 90 * 86400))
CLIENT_SECRET_GRACE_SECONDS = int(os.environ.get("AUTHSERVER_CLIENT_SECRET_GRACE_SECONDS", 86400))
# Used codes are kept this long after expiry so that a replayed code is still recognised and the
# tokens it issued revoked (RFC 9700 §4.5.3), then the cleanup job deletes them.
GRANT_RETENTION_SECONDS = int(os.environ.get("AUTHSERVER_GRANT_RETENTION_SECONDS", 86400))


# API keys (keys/): a deployment-specific prefix lets secret scanners tell your keys apart.
API_KEY_PREFIX = os.environ.get("AUTHSERVER_API_KEY_PREFIX", "ak")
if not (API_KEY_PREFIX.isascii() and API_KEY_PREFIX.isalnum() and API_KEY_PREFIX.islower() and
        API_KEY_PREFIX[0].isalpha() and len(API_KEY_PREFIX) <= 16 and API_KEY_PREFIX not in {"at", "rt", "cs", "ac"}):
    raise ImproperlyConfigured("AUTHSERVER_API_KEY_PREFIX must be 1-16 lowercase letters/digits, not at/rt/cs/ac")
API_KEY_DEFAULT_LIFETIME_SECONDS = int(os.environ.get("AUTHSERVER_API_KEY_DEFAULT_LIFETIME_SECONDS", 90 * 86400))
API_KEY_MAX_LIFETIME_SECONDS = int(os.environ.get("AUTHSERVER_API_KEY_MAX_LIFETIME_SECONDS", 365 * 86400))
API_KEY_GRACE_SECONDS = int(os.environ.get("AUTHSERVER_API_KEY_GRACE_SECONDS", 86400))
API_KEY_EXPIRY_WARNING_SECONDS = int(os.environ.get("AUTHSERVER_API_KEY_EXPIRY_WARNING_SECONDS", 7 * 86400))
# Token exchange (RFC 8693): an API key traded for an access token of at most this lifetime.
API_KEY_EXCHANGE_TOKEN_SECONDS = int(os.environ.get("AUTHSERVER_API_KEY_EXCHANGE_TOKEN_SECONDS", 600))

# Rate limits: name -> ("LIMIT/WINDOW_SECONDS", failure mode when the store is down). "closed"
# answers 503; "local" falls back to a per-process window (authserver/ratelimit/limiter.py).
RATE_LIMITS: dict[str, tuple[str, str]] = {
    "token.ip": ("1200/60", "local"),
    "token.client": ("6000/60", "local"),
    "token.auth_failure.ip": ("20/300", "local"),
    "introspect.rs": ("600000/60", "process"),
    "revoke.ip": ("600/60", "local"),
    "login.ip": ("30/300", "closed"),
    "login.account": ("10/300", "closed"),
    "consent.user": ("60/60", "closed"),
    "api.client": ("600/60", "closed"),
}
if os.environ.get("AUTHSERVER_RATE_LIMITS"):
    import json as _json

    # {"name": ["LIMIT/WINDOW", "mode"]}, or {"name": "LIMIT/WINDOW"} to keep the policy's mode.
    RATE_LIMITS.update({
        k: (v, RATE_LIMITS[k][1]) if isinstance(v, str) else tuple(v)
        for k, v in _json.loads(os.environ["AUTHSERVER_RATE_LIMITS"]).items()
    })
    for _name, (_limit, _mode) in RATE_LIMITS.items():
        if _mode not in {"closed", "local", "process"} or not re.fullmatch(r"[1-9][0-9]*/[1-9][0-9]*", _limit):
            raise ImproperlyConfigured(f"AUTHSERVER_RATE_LIMITS: bad policy {_name}: {_limit!r}, {_mode!r}")

# The expired-token sweep pauses this many times as long as each batch took (authserver/oauth/services.py).
CLEANUP_PAUSE_RATIO = float(os.environ.get("AUTHSERVER_CLEANUP_PAUSE_RATIO", 3.0))

# Compromise-response job tuning (tests shrink these to interrupt a job midway).
COMPROMISE_BATCH_SIZE = int(os.environ.get("AUTHSERVER_COMPROMISE_BATCH_SIZE", 500))
COMPROMISE_BATCH_PAUSE = float(os.environ.get("AUTHSERVER_COMPROMISE_BATCH_PAUSE", 0))
COMPROMISE_STALE_SECONDS = int(os.environ.get("AUTHSERVER_COMPROMISE_STALE_SECONDS", 60))
MANAGEMENT_API_AUDIENCE = f"{ISSUER}/api"

# Adaptive rate limits and anomaly detection (authserver/anomaly). Limits are per minute.
ANOMALY_WINDOW_MINUTES = int(os.environ.get("AUTHSERVER_ANOMALY_WINDOW_MINUTES", 120))  # trailing baseline
ANOMALY_WARMUP_MINUTES = int(os.environ.get("AUTHSERVER_ANOMALY_WARMUP_MINUTES", 30))  # before: default limit
ANOMALY_QUANTILE = float(os.environ.get("AUTHSERVER_ANOMALY_QUANTILE", 0.99))
ANOMALY_EWMA_ALPHA = float(os.environ.get("AUTHSERVER_ANOMALY_EWMA_ALPHA", 0.1))
ANOMALY_LIMIT_FACTOR = float(os.environ.get("AUTHSERVER_ANOMALY_LIMIT_FACTOR", 4.0))  # limit = k x high quantile
ANOMALY_LIMIT_FLOOR = int(os.environ.get("AUTHSERVER_ANOMALY_LIMIT_FLOOR", 60))
ANOMALY_LIMIT_CEILING = int(os.environ.get("AUTHSERVER_ANOMALY_LIMIT_CEILING", 60000))
ANOMALY_DEFAULT_LIMIT = int(os.environ.get("AUTHSERVER_ANOMALY_DEFAULT_LIMIT", 600))  # new credentials
ANOMALY_VOLUME_FACTOR = float(os.environ.get("AUTHSERVER_ANOMALY_VOLUME_FACTOR", 3.0))
ANOMALY_VOLUME_MIN = int(os.environ.get("AUTHSERVER_ANOMALY_VOLUME_MIN", 30))
ANOMALY_TIGHTEN_FACTOR = float(os.environ.get("AUTHSERVER_ANOMALY_TIGHTEN_FACTOR", 1.5))
ANOMALY_TIGHTEN_SECONDS = int(os.environ.get("AUTHSERVER_ANOMALY_TIGHTEN_SECONDS", 3600))
ANOMALY_AUTH_FAILURE_BURST = int(os.environ.get("AUTHSERVER_ANOMALY_AUTH_FAILURE_BURST", 20))  # per address/min
ANOMALY_INVALID_TOKEN_BURST = int(os.environ.get("AUTHSERVER_ANOMALY_INVALID_TOKEN_BURST", 50))  # per address/min
ANOMALY_FISHING_BURST = int(os.environ.get("AUTHSERVER_ANOMALY_FISHING_BURST", 100))  # inactive answers/RS/min
ANOMALY_REVOKED_USE_BURST = int(os.environ.get("AUTHSERVER_ANOMALY_REVOKED_USE_BURST", 1))
ANOMALY_DEDUPE_MINUTES = int(os.environ.get("AUTHSERVER_ANOMALY_DEDUPE_MINUTES", 60))
ANOMALY_TRAFFIC_RETENTION_DAYS = int(os.environ.get("AUTHSERVER_ANOMALY_TRAFFIC_RETENTION_DAYS", 7))
ANOMALY_LIMIT_CACHE_SECONDS = float(os.environ.get("AUTHSERVER_ANOMALY_LIMIT_CACHE_SECONDS", 30))
ANOMALY_ALERT_EMAILS = _env_list("AUTHSERVER_ANOMALY_ALERT_EMAILS", [])  # operators, besides the client contact

EMAIL_BACKEND = os.environ.get(
    "AUTHSERVER_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = DATA_DIR / "outbox"
DEFAULT_FROM_EMAIL = os.environ.get("AUTHSERVER_FROM_EMAIL", "authserver@localhost")


OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "authserver.oauth.limits.RateLimitedValidator",
    "OAUTH2_SERVER_CLASS": "authserver.oauth.server.AuthServer",
    "SCOPES_BACKEND_CLASS": "clients.scopes.DatabaseScopes",
    "SCOPES": {"__registry__": "Scopes live in the database (clients.Scope)"},
    "DEFAULT_SCOPES": [],
    "CLIENT_SECRET_GENERATOR_CLASS": "authserver.credentials.ClientSecretGenerator",
    "CLIENT_SECRET_HASHER": "authserver_sha256",
    "ACCESS_TOKEN_GENERATOR": "authserver.credentials.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "authserver.credentials.generate_refresh_token",
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_DEFAULT_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TOKEN_MAX_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    # Loopback http for native apps is allowed per client (Client.get_allowed_schemes, RFC 8252).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "ALLOWED_SCHEMES": ["https"],
    "ALLOW_URI_WILDCARDS": False,
    "ALLOW_LOCALHOST_LOOPBACK": False,
    "REQUEST_APPROVAL_PROMPT": "force",
    "OIDC_ENABLED": False,
    "OIDC_ISS_ENDPOINT": ISSUER,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
    # Every RFC 9700 gate on (docs/decisions/0004-secure-defaults.md).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # Small batches with pauses between them (CLEANUP_PAUSE_RATIO): the sweep never holds the CPU long.
    "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": int(os.environ.get("AUTHSERVER_CLEANUP_BATCH_SIZE", 1000)),
    # DOT registers the admin for its swapped models itself; these are ours (no secret columns).
    "APPLICATION_ADMIN_CLASS": "clients.admin.ClientAdmin",
    "ACCESS_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.AccessTokenAdmin",
    "REFRESH_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.RefreshTokenAdmin",
    "GRANT_ADMIN_CLASS": "authserver.oauth.admin.GrantAdmin",
    "ID_TOKEN_ADMIN_CLASS": "authserver.oauth.admin.IDTokenAdmin",
}

# --- DRF ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {"TITLE": "authserver management API", "VERSION": "0.1.0"}

# --- i18n, static -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(mode=0o700, exist_ok=True)
# The admin's CSS and JS are served by the app itself (no third-party assets, no CDN). Production
# serves the collected, hashed files; elsewhere they come straight from the app directories.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
if PRODUCTION:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Logging ------------------------------------------------------------------------------------
# Every handler passes through the redaction filter: anything shaped like one of our credentials
# is masked whatever logger emitted it.
DEFAULT_EXCEPTION_REPORTER_FILTER = "authserver.logging.ExceptionReporterFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "authserver.logging.RedactCredentialsFilter"}},
    "formatters": {"json": {"()": "authserver.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("AUTHSERVER_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("AUTHSERVER_DEBUG must be off in production")
