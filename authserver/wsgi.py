"""WSGI entry point (granian ``authserver.wsgi:application``).

Machine endpoints (token, introspection, revocation) run on a lean middleware stack; see
authserver/handlers.py.
"""

import os
import sys

import django

from authserver import datadir
from authserver.conf_parsers import EX_CONFIG, ConfigurationErrors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
try:
    datadir.prepare()  # before the settings read the data directory
    django.setup(set_prefix=False)
except ConfigurationErrors as exc:
    # The server must not start; its log gets the one listing of every bad variable, not a traceback.
    sys.stderr.write(f"{exc}\n")
    sys.stderr.flush()
    raise SystemExit(EX_CONFIG) from None

from authserver.handlers import Dispatcher  # noqa: E402 - needs the app registry

application = Dispatcher()
