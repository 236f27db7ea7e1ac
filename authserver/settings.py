"""Settings for authserver, driven entirely by the environment.

Nothing set: embedded defaults (SQLite, local-memory cache, a filesystem Celery broker, secrets in
the data directory), so ``uv run manage.py serve`` works on a fresh clone. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis. ``AUTHSERVER_ENV=production`` refuses to start
unless every secret and service it needs is configured explicitly.
"""

from __future__ import annotations

import os

import dj_database_url

from authserver import conf, datadir, settings_oauth
from authserver.conf import BASE_DIR

# Every AUTHSERVER_* variable is parsed and validated once, with its default, in authserver/conf.py.
# This module only reads: the data directory is prepared by the entry points (authserver/datadir.py).
config = conf.load(os.environ)

# The flat names code reads (settings.ISSUER…), spelled out so that type checkers see them;
# tests/test_conf.py checks this list against conf.flat_settings(), so none is missing or extra.
# fmt: off
DATA_DIR = config.data_dir
ISSUER = config.issuer
DATABASE_URL = config.database_url
REDIS_URL = config.redis_url
DB_PREPARED_STATEMENTS = config.db_prepared_statements
DB_LOCK_TIMEOUT = config.db_lock_timeout
DB_STATEMENT_TIMEOUT = config.db_statement_timeout
RATE_LIMITS = dict(config.rate_limits)
TRUSTED_PROXIES = list(config.trusted_proxies)
ACCESS_TOKEN_DEFAULT_SECONDS = config.tokens.access_default_seconds
ACCESS_TOKEN_MAX_SECONDS = config.tokens.access_max_seconds
REFRESH_TOKEN_DEFAULT_SECONDS = config.tokens.refresh_default_seconds
REFRESH_TOKEN_MAX_SECONDS = config.tokens.refresh_max_seconds
CLIENT_SECRET_GRACE_SECONDS = config.tokens.client_secret_grace_seconds
GRANT_RETENTION_SECONDS = config.tokens.grant_retention_seconds
API_KEY_PREFIX = config.api_keys.prefix
WEBAUTHN_RP_ID = config.webauthn_rp_id
WEBAUTHN_ORIGINS = list(config.webauthn_origins)
API_KEY_DEFAULT_LIFETIME_SECONDS = config.api_keys.default_lifetime_seconds
API_KEY_MAX_LIFETIME_SECONDS = config.api_keys.max_lifetime_seconds
API_KEY_GRACE_SECONDS = config.api_keys.grace_seconds
API_KEY_EXPIRY_WARNING_SECONDS = config.api_keys.expiry_warning_seconds
API_KEY_EXCHANGE_TOKEN_SECONDS = config.api_keys.exchange_token_seconds
KEYSTORE = config.keystore.backend
KEYSTORE_FILE = config.keystore.file
PKCS11_MODULE = config.keystore.pkcs11_module
PKCS11_TOKEN_LABEL = config.keystore.pkcs11_token_label
PKCS11_PIN = config.keystore.pkcs11_pin
PKCS11_KEY_LABEL = config.keystore.pkcs11_key_label
PKCS11_VERSION_CACHE_SECONDS = config.keystore.pkcs11_version_cache_seconds
CLEANUP_PAUSE_RATIO = config.cleanup.pause_ratio
COMPROMISE_BATCH_SIZE = config.jobs.compromise_batch_size
COMPROMISE_BATCH_PAUSE = config.jobs.compromise_batch_pause
COMPROMISE_STALE_SECONDS = config.jobs.compromise_stale_seconds
CRYPTO_ROTATION_BATCH_SIZE = config.jobs.crypto_rotation_batch_size
CRYPTO_ROTATION_BATCH_PAUSE = config.jobs.crypto_rotation_batch_pause
CRYPTO_ROTATION_STALE_SECONDS = config.jobs.crypto_rotation_stale_seconds
AUDIT_SEAL_INTERVAL = config.jobs.audit_seal_interval
AUDIT_UNSEALED_MAX_AGE = config.jobs.audit_unsealed_max_age
AUDIT_CHECKPOINT_INTERVAL = config.jobs.audit_checkpoint_interval
AUDIT_CHECKPOINT_PATH = config.jobs.audit_checkpoint_path
AUDIT_WITNESS_URL = config.jobs.audit_witness_url
ANOMALY_WINDOW_MINUTES = config.anomaly.window_minutes
ANOMALY_WARMUP_MINUTES = config.anomaly.warmup_minutes
ANOMALY_QUANTILE = config.anomaly.quantile
ANOMALY_EWMA_ALPHA = config.anomaly.ewma_alpha
ANOMALY_LIMIT_FACTOR = config.anomaly.limit_factor
ANOMALY_LIMIT_FLOOR = config.anomaly.limit_floor
ANOMALY_LIMIT_CEILING = config.anomaly.limit_ceiling
ANOMALY_DEFAULT_LIMIT = config.anomaly.default_limit
ANOMALY_VOLUME_FACTOR = config.anomaly.volume_factor
ANOMALY_VOLUME_MIN = config.anomaly.volume_min
ANOMALY_TIGHTEN_FACTOR = config.anomaly.tighten_factor
ANOMALY_TIGHTEN_SECONDS = config.anomaly.tighten_seconds
ANOMALY_AUTH_FAILURE_BURST = config.anomaly.auth_failure_burst
ANOMALY_INVALID_TOKEN_BURST = config.anomaly.invalid_token_burst
ANOMALY_FISHING_BURST = config.anomaly.fishing_burst
ANOMALY_REVOKED_USE_BURST = config.anomaly.revoked_use_burst
ANOMALY_DEDUPE_MINUTES = config.anomaly.dedupe_minutes
ANOMALY_TRAFFIC_RETENTION_DAYS = config.anomaly.traffic_retention_days
ANOMALY_LIMIT_CACHE_SECONDS = config.anomaly.limit_cache_seconds
ANOMALY_ALERT_EMAILS = list(config.anomaly.alert_emails)
WEBHOOK_SECRET_OVERLAP_SECONDS = config.webhooks.secret_overlap_seconds
WEBHOOK_ALLOW_HTTP_LOOPBACK = config.webhooks.allow_http_loopback
EMAIL_HOST, EMAIL_HOST_USER = config.webhooks.smtp_host, config.webhooks.smtp_user
EMAIL_HOST_PASSWORD = config.webhooks.smtp_password
MANAGEMENT_API_AUDIENCE = config.management_api_audience
METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR = config.metrics_token, config.metrics_dir
STAFF_STEP_UP_SECONDS = config.staff_step_up_seconds
REVOCATIONS_HEARTBEAT_SECONDS, REVOCATIONS_MAX_SECONDS, REVOCATIONS_RETENTION_SECONDS, REVOCATIONS_MAX_STREAMS = (
    config.revocations.as_tuple())
CIMD, CIMD_ALLOW_PRIVATE, CIMD_CA_FILE = config.cimd.as_tuple()  # authserver.conf_cimd
DEVICE_CODE_SECONDS, DEVICE_INTERVAL_SECONDS = config.device.as_tuple()  # RFC 8628 (authserver.conf_device)
DCR, DCR_UNUSED_SECONDS, REGISTRABLE_SCOPES, REGISTRABLE_AUDIENCES = config.registration.as_tuple()  # RFC 7591
# fmt: on

PRODUCTION, TESTING = config.production, config.testing

SECRET_KEY = datadir.django_secret_key(config=config)
DEBUG = config.debug

ALLOWED_HOSTS = list(config.allowed_hosts)
if TESTING:
    ALLOWED_HOSTS.append("testserver")
CSRF_TRUSTED_ORIGINS = list(config.csrf_trusted_origins)
CSRF_FAILURE_VIEW = "authserver.accounts.views.errors.csrf_failure"  # a plain 403 page, not Django's

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
    "django_otp",
    "authserver.staff.apps.RecoveryCodesConfig",  # django-otp's otp_static, readably named
    "authserver.passkeys",
    "authserver.staff",
    "authserver.oauth",
    "authserver.accounts",
    "authserver.audit",
    "clients",
    "keys",
    "authserver.crypto",
    "authserver.anomaly",
    "authserver.observability",
    "clients.webhooks", "authserver.revocation", "clients.discovery", "authserver.oauth.device", "clients.registration",
]
if TESTING:
    INSTALLED_APPS.append("tests.crypto.testapp")  # models with encrypted fields, test database only

MIDDLEWARE = [
    "authserver.handlers.UniformNotFoundMiddleware",  # one 404 for everything unknown (authserver.notfound)
    "authserver.accounts.middleware.BrowserErrorPagesMiddleware",  # browsers get pages, not JSON; browser-only
    "authserver.handlers.FailClosedMiddleware",
    "authserver.ratelimit.limiter.RateLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "authserver.csp.PageCSPMiddleware",  # pages only (authserver/csp.py); browser-only
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "authserver.accounts.middleware.PageLocaleMiddleware",  # the pages' language (Accept-Language); browser-only
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): a second factor passed in this session (authserver.staff).
    "django_otp.middleware.OTPMiddleware",
    "authserver.staff.middleware.StaffGateMiddleware",  # no admin page without a second factor
    # One acting scope per request: who changes what, one audit event per admin action.
    "authserver.audit.middleware.AuditScopeMiddleware",
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
if config.database_url:
    # Persistent connections with health checks (a connection per request would double the cost of
    # introspection); authserver.db.postgresql discards a connection whose session failed (read only,
    # terminated) at once and retries a request's first SELECT once on a dead connection.
    DATABASES = {"default": dj_database_url.parse(config.database_url, conn_max_age=600, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # not a sqlite:/// URL
        # Bounded waits on every session, set at connection start (no extra round trip); the release
        # step's migrations lift them for their own session (authserver.db.unbounded_waits).
        DATABASES["default"]["ENGINE"] = "authserver.db.postgresql"
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        if _session := config.postgres_session_options(_options.get("options", "")):
            _options["options"] = _session
    # One test database per test process, so concurrent runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(config.data_dir / "db.sqlite3"),
            "OPTIONS": {
                # IMMEDIATE transactions take the write lock up front, so concurrent web and
                # worker processes queue instead of failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                # The busy timeout: how long a statement waits for another process's write lock
                # before "database is locked" (503).
                "timeout": config.db_lock_timeout or 5.0,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "CONN_MAX_AGE": 600,
            # A file, not memory, so that a real Celery worker started by a test shares it.
            "TEST": {"NAME": config.data_dir / "test-db.sqlite3"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker ------------------------------------------------------------------------------
if config.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": config.redis_url,
            "KEY_PREFIX": "authserver",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

BROKER_DIR = config.broker_dir
CELERY_BROKER_URL = config.redis_url or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {"visibility_timeout": 3600}
    if config.redis_url
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
# The embedded broker: kombu's filesystem transport, discarding damaged message files instead of
# dying on them (authserver.broker). Redis: kombu's own.
CELERY_BROKER_TRANSPORT = None if config.redis_url else "authserver.broker:Transport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "authserver.beat:LockedDatabaseScheduler"
# Written into the database schedule each time beat starts (other entries are data-migration rows),
# so the sealer and the checkpoint follow their AUTHSERVER_AUDIT_* intervals; a stale run is dropped
# (the next one does all the work).
CELERY_BEAT_SCHEDULE = {
    "Audit trail: seal new events": {
        "task": "audit.seal",
        "schedule": float(AUDIT_SEAL_INTERVAL),
        "options": {"expire_seconds": 5 * AUDIT_SEAL_INTERVAL},
    },
    "Audit trail: checkpoint": {
        "task": "audit.checkpoint",
        "schedule": float(AUDIT_CHECKPOINT_INTERVAL),
        "options": {"expire_seconds": 5 * AUDIT_CHECKPOINT_INTERVAL},
    },
}
CELERY_TIMEZONE = "UTC"
# Tests of the embedded pass run tasks in-process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = config.celery_eager
# Celery logs through LOGGING below (JSON, redacted): authserver.celery answers setup_logging.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

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
# With AUTHSERVER_TRUSTED_PROXIES the header is also believed, but only from those proxies: the WSGI
# entry point drops it from any other peer (authserver.handlers, authserver.netaddr).
if config.behind_proxy or config.trusted_proxies:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config.ssl_redirect
# Probes speak plain HTTP to the container: a redirect would read as success to some of them.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$"]
SESSION_COOKIE_SECURE = not TESTING
CSRF_COOKIE_SECURE = not TESTING
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = config.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: Chromium then sends "Origin: null" on form posts and CSRF fails.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page (authserver/csp.py): scripts and styles from our own files only, no inline code
# anywhere (the admin's templates have none either), forms posting only here (the consent page adds
# its client's redirect origin), no framing, no <base>. connect-src: the admin's autocomplete.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"], "img-src": ["'self'"],
    "font-src": ["'self'"], "connect-src": ["'self'"], "form-action": ["'self'"], "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"]}}
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- Endpoint paths -----------------------------------------------------------------------------
# Unguessable admin and API paths by default, rotating OAuth paths optionally (docs/endpoints.md, decisions/0009).
ADMIN_PATH, API_PATH = datadir.admin_path(config=config), datadir.api_path(config=config)  # and docs/endpoints.md
ENDPOINTS, ENDPOINTS_WINDOW_SECONDS = config.endpoints.mode, config.endpoints.window_seconds

# --- OAuth --------------------------------------------------------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "clients.Client"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth.RefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth.IDToken"

# AUTHSERVER_SMTP_HOST set: mail goes to that server (EMAIL_HOST, EMAIL_HOST_USER/PASSWORD are flat names).
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend" if config.webhooks.smtp_host else config.email_backend
EMAIL_PORT = config.webhooks.smtp_port or {"starttls": 587, "ssl": 465}.get(config.webhooks.smtp_tls, 25)
EMAIL_USE_TLS, EMAIL_USE_SSL = config.webhooks.smtp_tls == "starttls", config.webhooks.smtp_tls == "ssl"
EMAIL_TIMEOUT = 10
EMAIL_FILE_PATH = config.data_dir / "outbox"
DEFAULT_FROM_EMAIL = config.from_email

# DOT's settings: every RFC 9700 gate on (authserver/settings_oauth.py).
OAUTH2_PROVIDER = settings_oauth.oauth2_provider(config)

# --- DRF ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "authserver management API",
    "VERSION": "0.1.0",
    # Personal fields (last_used_ip) are absent without their scope: optional in every schema.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "keys.serializers.personal_fields_optional",
    ],
}

# --- i18n, static -------------------------------------------------------------------------------
LANGUAGE_CODE, LANGUAGES, LOCALE_PATHS = "en", [("en", "English"), ("de", "Deutsch")], [BASE_DIR / "locale"]  # pages
TIME_ZONE, USE_I18N, USE_TZ = "UTC", True, True
FORMAT_MODULE_PATH = ["authserver.formats"]  # one date-time format everywhere: 2026-12-02 06:22 UTC
STATIC_URL = "static/"
STATIC_ROOT = config.static_root
STATICFILES_DIRS = [BASE_DIR / "static"]  # our pages' CSS and JS: files, never inline (CSP)
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
    "root": {"handlers": ["console"], "level": config.log_level},
    "loggers": {"django.server": {"level": "WARNING"}},
}
