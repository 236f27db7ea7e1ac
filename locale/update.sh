#!/bin/sh
# Re-extract the end-user pages' messages into locale/<lang>/LC_MESSAGES/django.po (existing
# translations are kept: makemessages merges) and compile django.mo. Only the end-user pages are
# translated (templates/base.html, accounts, oauth, errors; authserver/accounts), so makemessages runs
# in a scratch tree holding just those. Translate the new empty msgstr entries, run this again, and
# commit both files (tests/accounts/test_translations.py checks they agree and nothing is missing).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/templates" "$scratch/authserver" "$scratch/data"
for item in base.html accounts oauth errors; do ln -s "$repo/templates/$item" "$scratch/templates/$item"; done
ln -s "$repo/authserver/accounts" "$scratch/authserver/accounts"
cp -r "$repo/locale" "$scratch/locale"
rm -f "$scratch/locale/update.sh"
export AUTHSERVER_DATA_DIR="$scratch/data" DJANGO_SETTINGS_MODULE=authserver.settings PYTHONPATH="$repo"
cd "$repo" && uv run python -c "from authserver import datadir; datadir.prepare()"
for dir in "$scratch"/locale/*/; do
  lang=$(basename "$dir")
  (cd "$scratch" && uv run --project "$repo" django-admin makemessages -l "$lang" --symlinks --no-location --no-wrap)
  cp "$scratch/locale/$lang/LC_MESSAGES/django.po" "$repo/locale/$lang/LC_MESSAGES/django.po"
  msgfmt --check -o "$repo/locale/$lang/LC_MESSAGES/django.mo" "$repo/locale/$lang/LC_MESSAGES/django.po"
done
