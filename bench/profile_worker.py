"""The process :mod:`bench.profile` starts: Django on production settings, requests through WSGI:
200 unmeasured, half the rest timed without the profiler, the other half profiled."""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from bench.env import HOST


def _environ(path: str, authorization: str, body: str) -> dict[str, Any]:
    raw = body.encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": HOST, "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": HOST,
        "HTTP_X_FORWARDED_PROTO": "https", "HTTP_AUTHORIZATION": authorization,
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    from authserver.wsgi import application  # noqa: PLC0415 - after the environment is set

    statuses: dict[str, int] = {}

    def call(line: list[str]) -> None:
        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses[status] = statuses.get(status, 0) + 1

        answer = application(_environ(plan["path"], line[0], line[1]), start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    lines = plan["lines"]
    warm, rest = lines[:200], lines[200:]
    timed, profiled = rest[: len(rest) // 2], rest[len(rest) // 2:]
    for line in warm:
        call(line)
    statuses.clear()
    started = time.perf_counter()
    for line in timed:
        call(line)
    plain = (time.perf_counter() - started) / max(1, len(timed))
    profiler = cProfile.Profile()
    profiler.enable()
    for line in profiled:
        call(line)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(plan["top"])
    stats.sort_stats("tottime").print_stats(plan["top"])
    # Who makes the round trips: the callers of each database and Redis send.
    stats.print_callers(r"execute_command|_execute_transaction|\(execute\)|_execute_send|select\.select|\(send\)")
    print(f"{len(timed)} requests at {plain * 1e6:.0f} us each (one process, no profiler), then {len(profiled)} "
          f"profiled; answers: {statuses}")
    print(out.getvalue())

if __name__ == "__main__":
    main()
