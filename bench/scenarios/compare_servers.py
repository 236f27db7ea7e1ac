"""The same scenarios on each other WSGI server, each next to its own bare view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.env import progress
from bench.runner import BARE_PATH, Runner


def run(runner: Runner, bodies: dict[str, Path]) -> dict[str, Any]:
    out = {}
    for kind in runner.args.compare:
        if kind == runner.args.server:
            continue
        progress(f"server comparison: {kind}")
        srv = runner.start(kind, "authserver_bench", f"compare-{kind}")
        runner.warm(srv, runner.lines["bare"][0][0])
        try:
            summary = {}
            for name, path in (("introspect_hot", "/oauth/introspect"), ("introspect_cold", "/oauth/introspect"),
                               ("client_credentials", "/oauth/token")):
                bare = runner.wrk(srv, BARE_PATH, "bare", bodies["bare"])
                res = runner.wrk(srv, path, name, bodies[name])
                summary[name] = {"rps": res.rps, "p99_ms": res.p99_ms, "bare_rps": bare.rps,
                                 "vs_bare": res.rps / bare.rps if bare.rps else None, "errors": res.errors}
                progress(f"  {kind}: bare {bare.rps:.0f} req/s, {name} {res.rps:.0f} req/s")
            out[kind] = summary
        finally:
            runner.stop(srv)
    return out
