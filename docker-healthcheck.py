#!/usr/bin/env python3
"""The image's HEALTHCHECK: ``GET /livez`` on this container's own listener; exit 0 if it answers 200.

Liveness only (the process answers; no database, Redis or key store touched): a shared dependency
being down must not get every container restarted. Readiness is ``/readyz``, for the load balancer.

The entrypoint writes ``SCHEME HOST PORT`` to ``$HEALTHCHECK_TARGET`` (default
``/tmp/authserver-healthcheck``) in the ``web`` and ``serve`` roles; worker, beat and one-off
commands serve no HTTP, have no such file and count as healthy. Standard library only: the slim
image has no curl. The Host header is one Django accepts (the first ``AUTHSERVER_ALLOWED_HOSTS``
entry); ``serve``'s certificate is self-signed, and this connection never leaves the container, so
it is not verified.
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys


def allowed_host(environ: dict[str, str]) -> str:
    for entry in environ.get("AUTHSERVER_ALLOWED_HOSTS", "").split(","):
        entry = entry.strip().lstrip(".")
        if entry and entry != "*":
            return entry
    return "127.0.0.1"


def main(environ: dict[str, str]) -> int:
    path = environ.get("HEALTHCHECK_TARGET", "/tmp/authserver-healthcheck")  # noqa: S108 (the entrypoint's file)
    try:
        with open(path) as fh:
            scheme, host, port = fh.read().split()
    except FileNotFoundError:
        return 0
    connection: http.client.HTTPConnection
    if scheme == "https":
        context = ssl._create_unverified_context()  # noqa: S323 (loopback, self-signed; see above)
        connection = http.client.HTTPSConnection(host, int(port), timeout=3, context=context)
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=3)
    try:
        connection.request("GET", "/livez", headers={"Host": allowed_host(environ), "X-Forwarded-Proto": "https"})
        status = connection.getresponse().status
    except OSError as exc:
        print(f"/livez: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"/livez answered {status}", file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
