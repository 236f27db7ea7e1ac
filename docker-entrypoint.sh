#!/bin/sh
# Container entrypoint: the first argument is the role, the rest go to that role's program.
#
#   web [gunicorn args]   migrate, collectstatic, then gunicorn on 0.0.0.0:$PORT (default 8000), plain HTTP for a
#                         TLS-terminating proxy (AUTHSERVER_BEHIND_PROXY=1). WEB_CONCURRENCY sets
#                         the worker count (default 2); FORWARDED_ALLOW_IPS is read by gunicorn.
#   worker [celery args]  Celery worker (CELERY_CONCURRENCY, default 2)
#   beat [celery args]    Celery beat with django-celery-beat's database scheduler (run exactly one)
#   serve [serve args]    manage.py serve: migrate, first-run setup, HTTPS on 0.0.0.0:8443, worker, beat
#   manage ARGS           manage.py ARGS (e.g. `manage createsuperuser`)
#   anything else         executed as is
set -eu

role="${1:-serve}"
if [ "$#" -gt 0 ]; then shift; fi

cd /app

case "$role" in
    web)
        python manage.py migrate --noinput
        python manage.py collectstatic --noinput --verbosity 0
        export AUTHSERVER_BEHIND_PROXY=1
        # Sync workers behind the TLS-terminating proxy (gunicorn's recommended setup): measured
        # by the bench (`python -m bench`, server comparison) well ahead of gthread on the
        # machine endpoints, whose keep-alive connections pile onto one worker.
        exec python -m gunicorn authserver.wsgi:application \
            --bind "0.0.0.0:${PORT:-8000}" \
            --workers "${WEB_CONCURRENCY:-2}" \
            --worker-class sync \
            --graceful-timeout 8 \
            --worker-tmp-dir /dev/shm \
            --no-control-socket \
            "$@"
        ;;
    worker)
        if [ -z "${REDIS_URL:-}" ]; then
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
            --scheduler django_celery_beat.schedulers:DatabaseScheduler \
            --schedule /tmp/celerybeat-schedule \
            "$@"
        ;;
    serve)
        exec python manage.py serve --bind 0.0.0.0:8443 "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
