"""WSGI entry point (gunicorn ``authserver.wsgi:application``).

Machine endpoints (token, introspection, revocation) run on a lean middleware stack; see
authserver/handlers.py.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
django.setup(set_prefix=False)

from authserver.handlers import Dispatcher  # noqa: E402 - needs the app registry

application = Dispatcher()
