"""Open-loop latency: introspections sent at a fixed rate whatever the answers' pace, after the
bare view at the same rate (the floor: load generator, TCP, WSGI server); then client_credentials
tokens at their own rate (issue 17: p99 <= 20 ms at 200/s)."""

from __future__ import annotations

from typing import Any

from bench import load, servers
from bench.env import HOST, progress
from bench.runner import BARE_PATH, Runner, wait_until_idle


def run(runner: Runner, srv: servers.Server) -> dict[str, Any]:
    rate, seconds = runner.args.rate, runner.args.open_seconds
    mixed = [x for pair in zip(runner.lines["introspect_hot"], runner.lines["introspect_cold"][::-1], strict=False)
             for x in pair]
    # The bare view at the same rate first: the floor (load generator, TCP, WSGI server).
    progress(f"open loop: the bare view at {rate:.0f}/s for {seconds:.0f} s (the floor)")
    bare = load.open_loop(HOST, srv.port, BARE_PATH, runner.lines["bare"], rate=rate, seconds=seconds)
    wait_until_idle(srv)
    progress(f"  bare p50 {bare.p50_ms:.2f} ms p99 {bare.p99_ms:.2f} ms errors {bare.errors}")
    progress(f"open loop: {rate:.0f} introspections/s for {seconds:.0f} s (half hot, half cold)")
    res = load.open_loop(HOST, srv.port, "/oauth/introspect", mixed, rate=rate, seconds=seconds)
    wait_until_idle(srv)
    progress(f"  p50 {res.p50_ms:.2f} ms p99 {res.p99_ms:.2f} ms p99.9 {res.p999_ms:.2f} ms errors {res.errors}")
    token_rate = runner.args.token_rate
    progress(f"open loop: {token_rate:.0f} client_credentials tokens/s for {seconds:.0f} s")
    tokens = load.open_loop(HOST, srv.port, "/oauth/token", runner.lines["client_credentials"], rate=token_rate,
                            seconds=seconds)
    wait_until_idle(srv)
    progress(f"  p50 {tokens.p50_ms:.2f} ms p99 {tokens.p99_ms:.2f} ms p99.9 {tokens.p999_ms:.2f} ms "
             f"errors {tokens.errors}")
    return {"rate": rate, "seconds": seconds, "p50_ms": res.p50_ms, "p99_ms": res.p99_ms,
            "p999_ms": res.p999_ms, "errors": res.errors, "requests": res.requests,
            "bare": {"p50_ms": bare.p50_ms, "p99_ms": bare.p99_ms, "p999_ms": bare.p999_ms, "errors": bare.errors},
            "client_credentials": {"rate": token_rate, "p50_ms": tokens.p50_ms, "p99_ms": tokens.p99_ms,
                                   "p999_ms": tokens.p999_ms, "errors": tokens.errors,
                                   "requests": tokens.requests}}
