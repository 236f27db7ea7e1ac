# syntax=docker/dockerfile:1
#
# authserver image. One image, five roles (docker-entrypoint.sh):
#   migrate the release step: migrations applied once (PostgreSQL advisory lock), key store checked
#   web     granian on 0.0.0.0:8000, plain HTTP behind a TLS-terminating proxy (does not migrate:
#           /readyz answers 503 until the migrate step has run)
#   worker  Celery worker            beat    Celery beat (django-celery-beat's DatabaseScheduler)
#   serve   everything in one container (manage.py serve: HTTPS on 0.0.0.0:8443, self-signed
#           certificate in /data/tls unless you mount your own cert.pem/key.pem there)
# Anything else runs as a command, e.g. `docker run IMAGE manage createsuperuser`.
#
# Production (AUTHSERVER_ENV=production) refuses to start without AUTHSERVER_ISSUER,
# AUTHSERVER_SECRET_KEY, AUTHSERVER_ALLOWED_HOSTS, a PostgreSQL DATABASE_URL and REDIS_URL
# (authserver/conf.py): nothing here sets them, so the development default issuer
# https://127.0.0.1:8443 can't leak into production.
#
#   docker build -t authserver .
#   docker run --rm -it -p 8443:8443 -v authserver-data:/data authserver serve

# Debian pinned (bookworm): it decides the PostgreSQL client tools' version below.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve nothing, install exactly uv.lock ------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app
COPY pyproject.toml uv.lock ./
# The project itself is not a package (tool.uv.package = false): only its dependencies go in.
RUN uv sync --frozen --no-dev --no-install-project

# --- final: the venv, the source, a non-root user -----------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=authserver.settings \
    AUTHSERVER_DATA_DIR=/data

# PostgreSQL client tools for `manage.py backup` / `restore` (pg_dump, pg_restore): their major
# version must be at least the server's (Debian bookworm's is 15, as in compose.yaml).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# /keystore and /audit: the mount points of the key-store and audit-checkpoint volumes every role
# shares (compose.yaml); they exist here, owned by the runtime user, so that a new named volume
# mounted on one starts out owned by it.
RUN groupadd --system --gid 10001 authserver \
    && useradd --system --uid 10001 --gid authserver --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin authserver \
    && install -d -o authserver -g authserver -m 0700 /data /keystore /audit

WORKDIR /app
# Same base image as the builder, so the venv's interpreter path (/usr/local/bin/python3.11) holds.
COPY --from=builder /app/.venv /app/.venv
# Source only, listed explicitly: never the developer's .venv, var/ (secrets, database) or .git.
# The code stays owned by root and read-only to the runtime user.
COPY manage.py pyproject.toml ./
COPY authserver ./authserver
COPY clients ./clients
COPY keys ./keys
COPY templates ./templates
COPY static ./static
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY docker-healthcheck.py /usr/local/bin/docker-healthcheck
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh /usr/local/bin/docker-healthcheck \
    && python -m compileall -q /app/authserver /app/clients /app/keys

USER 10001:10001
VOLUME /data
# 8443: the serve role (HTTPS). 8000: the web role (plain HTTP for the proxy in front of it).
EXPOSE 8443 8000

# Liveness only (/livez touches no dependency); in the web and serve roles, a no-op in the others.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/docker-healthcheck"]

ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["serve"]
