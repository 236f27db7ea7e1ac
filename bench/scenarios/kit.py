"""The resource-server kit (rs/, authserver_rs): what verification costs an AI API per request.

In the bench process, one request at a time over the kit's pooled connection: a cache hit
(in-process: a SHA-256, a dictionary lookup under a lock, the stream rule), a cache miss (one
introspection to the bench's server), and the bare view over the same connection (the baseline of
both ratios: ``x bare`` = requests per second / the bare view's). The revocation stream is off
here, so the hit path skips only its health check (three attribute reads).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from authserver_rs import Config, InvalidToken, ResourceServer

from bench import servers
from bench.env import progress
from bench.runner import BARE_PATH, Runner

CLIENT_IP = "192.0.2.10"


def _summary(samples_ns: list[int], bare_rps: float | None) -> dict[str, Any]:
    ordered = sorted(samples_ns)
    mean_s = statistics.fmean(ordered) / 1e9
    rps = 1 / mean_s if mean_s else 0.0
    return {"rps": rps, "p50_ms": ordered[len(ordered) // 2] / 1e6,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6,
            "vs_bare": rps / bare_rps if bare_rps else None, "requests": len(ordered)}


def _timed(call: Any, count: int) -> list[int]:
    samples = []
    for i in range(count):
        start = time.perf_counter_ns()
        call(i)
        samples.append(time.perf_counter_ns() - start)
    return samples


def run(runner: Runner, srv: servers.Server, seeded: dict[str, Any]) -> dict[str, Any]:
    small = runner.args.small
    round_trips, hits = (300, 20_000) if small else (3_000, 300_000)
    kit = ResourceServer(Config(client_id=seeded["rs_client_id"], client_secret=seeded["rs_secret"],
                                introspection_endpoint=srv.url + "/oauth/introspect", revocation_stream=False,
                                verify_tls=False, cache_ttl=3600))
    kit.http.headers["X-Forwarded-Proto"] = "https"  # as the bench's TLS "proxy" does (bench.env)
    try:
        tokens = [body.removeprefix("token=") for _, body in runner.lines["introspect_hot"][:round_trips]]
        bare_form = runner.lines["bare"][0][1]
        progress(f"kit: {round_trips} bare-view round trips, {round_trips} introspections, {hits:,} cache hits")
        bare = _timed(lambda i: kit.http.post(srv.url + BARE_PATH, content=bare_form,
                                              headers={"Content-Type": "application/x-www-form-urlencoded"}),
                      round_trips)
        bare_rps = 1 / (statistics.fmean(bare) / 1e9)
        miss = _timed(lambda i: kit.introspector.introspect(tokens[i % len(tokens)], CLIENT_IP), round_trips)
        live = next((t for t in tokens if kit.introspector.introspect(t, CLIENT_IP)["active"]), None)
        if live is None:
            raise RuntimeError("no active token in the hot set")

        def verify(_: int) -> None:
            try:
                kit.authenticate(live, CLIENT_IP)
            except InvalidToken as exc:  # pragma: no cover - the bench would be measuring the wrong thing
                raise RuntimeError("the cached token went inactive") from exc

        kit.authenticate(live, CLIENT_IP)
        hit = _timed(verify, hits)
    finally:
        kit.close()
    result = {"bare": {"rps": bare_rps, "p50_ms": statistics.median(bare) / 1e6, "requests": len(bare)},
              "cached": _summary(hit, bare_rps), "miss": _summary(miss, bare_rps)}
    progress(f"  bare {bare_rps:.0f}/s | miss {result['miss']['rps']:.0f}/s | hit {result['cached']['rps']:.0f}/s "
             f"(p50 {result['cached']['p50_ms'] * 1000:.1f} us)")
    return result
