"""WSGI entry point (gunicorn ``authserver.wsgi:application``).

Machine endpoints (token, introspection, revocation) run on a lean middleware stack; see
authserver/handlers.py.
"""

import os

import django

from authserver import datadir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
datadir.prepare()  # before the settings read the data directory
django.setup(set_prefix=False)

from authserver.handlers import Dispatcher  # noqa: E402 - needs the app registry

application = Dispatcher()
