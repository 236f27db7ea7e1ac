"""Loaded into the Celery worker started by ``serve`` (``celery worker -I``).

When the worker is consuming it writes its pid to ``$AUTHSERVER_SERVE_WORKER_READY_FILE``, which is
how ``serve`` knows the worker is really up before it prints "Ready.".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery.signals import worker_ready


@worker_ready.connect
def announce_ready(sender: Any = None, **kwargs: Any) -> None:
    path = os.environ.get("AUTHSERVER_SERVE_WORKER_READY_FILE")
    if path:
        Path(path).write_text(f"{os.getpid()}\n")
