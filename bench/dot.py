# ruff: noqa: S603 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Vanilla django-oauth-toolkit 3.4.1: a scratch environment and project the bench creates itself.

A virtualenv (cached under ``~/.cache/authserver-bench``; ``uv venv`` + ``uv pip install``) and a
minimal project generated here: Django's default middleware and settings, DOT's default
configuration (PBKDF2-hashed client secrets, ``IntrospectTokenView`` requiring a Bearer token with
the ``introspection`` scope or the client's Basic credentials). Same PostgreSQL server, same WSGI
server and worker count as the authserver under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import data
from bench.env import HOST, database_url, progress

DOT_VERSION = "3.4.1"


def _same_as_ours(name: str, fallback: str) -> str:
    """The WSGI servers at the versions the authserver runs, so both sides get the same server."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return fallback


PACKAGES = ["django>=5.2,<5.3", f"django-oauth-toolkit=={DOT_VERSION}", _same_as_ours("gunicorn", "gunicorn>=23"),
            _same_as_ours("granian", "granian>=2"), "psycopg[binary]>=3.2"]

SETTINGS_TEMPLATE = '''
SECRET_KEY = "vanilla-dot-bench-" + "x" * 50
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "oauth2_provider",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "dotproj.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
WSGI_APPLICATION = "dotproj.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": %(name)r, "USER": %(user)r,
                         "PASSWORD": %(password)r, "HOST": %(host)r, "PORT": %(port)r}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
'''

URLS = '''
from django.urls import include, path
urlpatterns = [path("o/", include("oauth2_provider.urls", namespace="oauth2_provider"))]
'''

WSGI = '''
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotproj.settings")
application = get_wsgi_application()
'''

SEED = '''
import json, os, sys
from datetime import timedelta
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotproj.settings")
django.setup()
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model
plan = json.loads(open(sys.argv[1]).read())
App, AccessToken = get_application_model(), get_access_token_model()
rs = App(name="rs", client_id="dot-rs", client_secret=plan["rs_secret"], client_type="confidential",
         authorization_grant_type="client-credentials")
rs.save()  # hashes the secret with PBKDF2, DOT's default
svc = App(name="svc", client_id="dot-svc", client_secret=plan["svc_secret"], client_type="confidential",
          authorization_grant_type="client-credentials")
svc.save()
now = timezone.now()
AccessToken.objects.create(token=plan["introspector"], application=rs, scope="introspection read",
                           expires=now + timedelta(hours=6))
tokens = plan["tokens"]
batch = []
for i, (value, expired) in enumerate(tokens):
    batch.append(AccessToken(token=value, application=svc, scope="read", resource=[plan["audience"]],
                             expires=now - timedelta(hours=1) if expired else now + timedelta(hours=6)))
    if len(batch) == 5000:
        AccessToken.objects.bulk_create(batch)
        batch = []
AccessToken.objects.bulk_create(batch)
print(json.dumps({"tokens": len(tokens)}))
'''


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "authserver-bench")


def ensure_venv() -> Path:
    """The scratch virtualenv with vanilla DOT; built once, reused while its marker matches."""
    venv = cache_dir() / f"dot-{DOT_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".bench-packages"
    if python.exists() and marker.exists() and marker.read_text() == json.dumps(PACKAGES):
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to build the vanilla DOT environment")
    progress(f"building the vanilla DOT {DOT_VERSION} environment in {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True,
                   env={**os.environ, "UV_PYTHON": py})
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *PACKAGES], check=True)
    marker.write_text(json.dumps(PACKAGES))
    return python


def write_project(root: Path, db_name: str) -> Path:
    from urllib.parse import urlsplit

    url = urlsplit(database_url(db_name))
    pkg = root / "dotproj"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text(SETTINGS_TEMPLATE % {
        "name": db_name, "user": url.username or "", "password": url.password or "", "host": url.hostname or HOST,
        "port": str(url.port or 5432)})
    (pkg / "urls.py").write_text(URLS)
    (pkg / "wsgi.py").write_text(WSGI)
    (root / "seed_dot.py").write_text(SEED)
    return root


def env_for(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(DJANGO_SETTINGS_MODULE="dotproj.settings", PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    return env


def setup(python: Path, root: Path, seed: str, count: int) -> dict[str, str]:
    env = env_for(root)
    subprocess.run([str(python), "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=root, env=env, check=True)
    plan = {
        "rs_secret": "dot-rs-secret-" + data.digest(seed + "rs")[:30],
        "svc_secret": "dot-svc-secret-" + data.digest(seed + "svc")[:30],
        "introspector": data.credential(seed, "at", "dot-introspector", 0),
        "audience": data.RS_AUDIENCE,
        "tokens": [(dot_token(seed, i), i % 10 == 9) for i in range(count)],
    }
    (root / "plan.json").write_text(json.dumps(plan))
    subprocess.run([str(python), "seed_dot.py", str(root / "plan.json")], cwd=root, env=env, check=True,
                   capture_output=True)
    return {k: v for k, v in plan.items() if k != "tokens"}


def dot_token(seed: str, i: int) -> str:
    """Tokens of the vanilla DOT data set: i % 10 == 9 are expired."""
    return data.credential(seed, "at", "dot", i)
