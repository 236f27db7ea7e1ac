"""Closed-loop throughput: wrk at a fixed concurrency, each scenario right after the bare view.

Rounds of [bare, scenario] pairs, so every ratio compares two runs seconds apart on the same
server; vanilla DOT runs right after the scenario it is compared to.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import load, servers
from bench.env import progress
from bench.runner import BARE_PATH, Runner


def run(runner: Runner, srv: servers.Server, bodies: dict[str, Path], *, dot_srv: servers.Server | None,
        dot_bodies: dict[str, Path], rounds: int, label: str) -> dict[str, dict[str, Any]]:
    ours = [("introspect_hot", "/oauth/introspect"), ("introspect_cold", "/oauth/introspect"),
            ("apikey_hot", "/oauth/introspect"), ("apikey_cold", "/oauth/introspect"),
            ("client_credentials", "/oauth/token"), ("authorization_code", "/oauth/token"),
            ("refresh_token", "/oauth/token")]
    dots = {"introspect_hot": ["dot_introspect_bearer", "dot_introspect_basic"],
            "client_credentials": ["dot_client_credentials"]}
    dot_paths = {"dot_introspect_bearer": "/o/introspect/", "dot_introspect_basic": "/o/introspect/",
                 "dot_client_credentials": "/o/token/"}
    only = set(runner.args.only.split(",")) if runner.args.only else None
    results: dict[str, list[tuple[load.Result, load.Result | None]]] = {}
    for r in range(rounds):
        for name, path in ours:
            if only and name not in only:
                continue
            progress(f"{label} round {r + 1}/{rounds}: bare view, then {name}")
            bare = runner.wrk(srv, BARE_PATH, "bare", bodies["bare"])
            res = runner.wrk(srv, path, name, bodies[name])
            results.setdefault(name, []).append((res, bare))
            progress(f"  bare {bare.rps:8.0f} req/s | {name} {res.rps:8.0f} req/s p99 {res.p99_ms:.2f} ms "
                     f"errors {res.errors}")
            if dot_srv is not None:
                for dname in dots.get(name, []):
                    dres = runner.wrk(dot_srv, dot_paths[dname], dname, dot_bodies[dname],
                                    seconds=max(runner.args.seconds, 3))
                    results.setdefault(dname, []).append((dres, None))
                    progress(f"  vanilla DOT {dname} {dres.rps:8.1f} req/s p99 {dres.p99_ms:.1f} ms "
                             f"errors {dres.errors}")
    summary = {}
    for name, pairs in results.items():
        reqs = sum(p[0].requests for p in pairs)
        secs = sum(p[0].seconds for p in pairs)
        ratios = [p[0].rps / p[1].rps for p in pairs if p[1] is not None and p[1].rps]
        summary[name] = {
            "rps": reqs / secs if secs else 0.0,
            "p50_ms": statistics.median(p[0].p50_ms for p in pairs),
            "p99_ms": max(p[0].p99_ms for p in pairs),
            "errors": sum(p[0].errors for p in pairs),
            "active_share": sum(p[0].active for p in pairs) / max(1, reqs),
            "vs_bare": statistics.mean(ratios) if ratios else None,
            "bare_rps": statistics.mean(p[1].rps for p in pairs if p[1] is not None) if ratios else None,
            "requests": reqs,
        }
    return summary
