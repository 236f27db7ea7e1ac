#!/bin/sh
# Container entrypoint: the first argument is the role, the rest go to that role's program.
#
#   migrate [args]        the release step: manage.py migrate_locked (migrations applied once under a
#                         PostgreSQL advisory lock, however many replicas run it together; then the
#                         key store checked, created on a fresh install). Run it before/alongside web.
#   web [granian args]    collectstatic, then granian on 0.0.0.0:$PORT (default 8000), plain HTTP for a
#                         TLS-terminating proxy (AUTHSERVER_BEHIND_PROXY=1). WEB_CONCURRENCY sets
#                         the worker count (default 2). It does not migrate: /readyz answers 503
#                         ("migrations": "pending") until the migrate step has run.
#   worker [celery args]  Celery worker (CELERY_CONCURRENCY, default 2)
#   beat [celery args]    Celery beat with the database scheduler under the beat lock (a second one stands by)
#   serve [serve args]    manage.py serve: migrate, first-run setup, HTTPS on 0.0.0.0:8443, worker, beat
#   manage ARGS           manage.py ARGS (e.g. `manage createsuperuser`, `manage backup --output F`)
#   anything else         executed as is
#
# web and serve write where their /livez listens to $HEALTHCHECK_TARGET, for the image's
# HEALTHCHECK (docker-healthcheck.py); the other roles serve no HTTP and have nothing to probe.
set -eu

role="${1:-serve}"
if [ "$#" -gt 0 ]; then shift; fi

cd /app
HEALTHCHECK_TARGET="${HEALTHCHECK_TARGET:-/tmp/authserver-healthcheck}"

case "$role" in
    migrate)
        exec python manage.py migrate_locked "$@"
        ;;
    web)
        # Static files go to the data volume (STATIC_ROOT is <data dir>/static, served by
        # WhiteNoise); collectstatic touches no database, so it stays here rather than in the image.
        python manage.py collectstatic --noinput --verbosity 0
        printf 'http 127.0.0.1 %s\n' "${PORT:-8000}" > "$HEALTHCHECK_TARGET"
        export AUTHSERVER_BEHIND_PROXY=1
        # Granian behind the TLS-terminating proxy: the bench's server comparison (`python -m
        # bench`) measured it ahead of gunicorn sync and gthread workers on introspection (hot and
        # cold) and client_credentials, on the same app and settings (keep-alive handled outside
        # the GIL, one blocking thread per worker process for requests as with sync workers), plus
        # one per revocation stream a worker may hold (AUTHSERVER_REVOCATIONS_MAX_STREAMS, default
        # 8; docs/revocation-stream.md): a stream keeps its thread for minutes. WEB_THREADS
        # overrides the total. Request line and headers capped at 64 KiB as in manage.py serve
        # (granian answers 414/431 above it).
        exec python -m granian \
            --interface wsgi \
            --host 0.0.0.0 \
            --port "${PORT:-8000}" \
            --workers "${WEB_CONCURRENCY:-2}" \
            --blocking-threads "${WEB_THREADS:-$((1 + ${AUTHSERVER_REVOCATIONS_MAX_STREAMS:-8}))}" \
            --backlog 2048 \
            --no-ws \
            --respawn-failed-workers \
            --workers-kill-timeout 8 \
            --log-level warning \
            --log-config /app/authserver/serve/server_logging.json \
            --no-access-log \
            --http1-buffer-size 65536 \
            --http2-max-headers-size 65536 \
            "$@" \
            authserver.wsgi:application
        ;;
    worker)
        if [ -z "${REDIS_URL:-}" ] && [ -z "${REDIS_URL_FILE:-}" ]; then
            # Embedded filesystem broker: kombu moves each message it takes into the temporary
            # directory; keep that in the (owner-only) data volume, as manage.py serve does.
            mkdir -p -m 0700 "$AUTHSERVER_DATA_DIR/broker/tmp"
            export TMPDIR="$AUTHSERVER_DATA_DIR/broker/tmp"
        fi
        exec python -m celery -A authserver worker \
            --loglevel INFO \
            --concurrency "${CELERY_CONCURRENCY:-2}" \
            -Q celery \
            --without-mingle --without-gossip \
            "$@"
        ;;
    beat)
        # The schedule lives in the database; beat's local files stay inside the container.
        exec python -m celery -A authserver beat \
            --loglevel INFO \
            --scheduler authserver.beat:LockedDatabaseScheduler \
            --schedule /tmp/celerybeat-schedule \
            "$@"
        ;;
    serve)
        printf 'https 127.0.0.1 8443\n' > "$HEALTHCHECK_TARGET"
        exec python manage.py serve --bind 0.0.0.0:8443 "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
