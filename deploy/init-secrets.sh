#!/bin/sh
# Creates deploy/secrets/ for compose.yaml: random values, each file readable only by the user of
# the container that needs it. Never overwrites an existing file (re-running fills in what is
# missing). Run it as root (sudo), on the machine that runs compose.
#
#   sudo deploy/init-secrets.sh
set -eu
cd "$(dirname "$0")"
umask 077

APP_UID=10001    # the authserver image's user
REDIS_UID=999    # the redis image's user

random() { head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }

# put NAME OWNER CONTENT: write secrets/NAME (0400, owned by OWNER) unless it exists.
put() {
    if [ -e "secrets/$1" ]; then
        echo "kept    secrets/$1"
        return
    fi
    printf '%s\n' "$3" > "secrets/$1.tmp"
    chmod 0400 "secrets/$1.tmp"
    if [ "$(id -u)" = 0 ]; then chown "$2:$2" "secrets/$1.tmp"; fi
    mv "secrets/$1.tmp" "secrets/$1"
    echo "created secrets/$1"
}

# A password shared by two files is read from the first one when that one already exists.
shared() { if [ -e "secrets/$1" ]; then sed -n "$2" "secrets/$1"; else random 40; fi; }

mkdir -p secrets backups
if [ "$(id -u)" = 0 ]; then
    chown "$APP_UID:$APP_UID" backups
else
    echo "not root: files stay owned by $(id -un); the containers may not be able to read them" >&2
fi
chmod 0700 backups

pg=$(shared postgres_password 'p')
put postgres_password 0 "$pg"
put database_url "$APP_UID" "postgres://authserver:$pg@postgres:5432/authserver"

rd=$(shared redis_conf 's/^requirepass //p')
put redis_conf "$REDIS_UID" "requirepass $rd"
put redis_url "$APP_UID" "redis://:$rd@redis:6379/0"

put django_secret_key "$APP_UID" "$(random 64)"
put admin_path "$APP_UID" "admin-$(random 16)"
put metrics_token "$APP_UID" "$(random 43)"
