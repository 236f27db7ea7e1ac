# ruff: noqa: S311 - reproducible pseudo-random data
"""Introspection throughput with a small and a large token table (the same requests against both),
then the cleanup job's effect on latency (:mod:`bench.scenarios.cleanup`) on the large one."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from bench import data, env, load
from bench.env import progress
from bench.runner import Runner, basic
from bench.scenarios import cleanup


def run(runner: Runner) -> dict[str, Any]:
    s = runner.sizes
    small_db, large_db = "authserver_bench_scale_small", "authserver_bench_scale_large"
    seeds = {}
    for db, count in ((small_db, s.scale_small), (large_db, s.scale_large)):
        env.recreate_database(db, template="authserver_bench_template")
        seed_env = env.production_env(db, runner.data_dir(db))
        tiny = data.Sizes(live=0, expired=0, clients=min(s.clients, 100), keys=0, codes=0, refresh=0)
        seeds[db] = json.loads(env.run_python(seed_env, "bench.seed", "main",
                                              json.dumps({"sizes": tiny.as_dict(), "seed": runner.seed})
                                              ).strip().splitlines()[-1])
        progress(f"scale: seeding {count:,} live tokens into {db}")
        env.run_python(seed_env, "bench.seed", "scale", json.dumps({"seed": runner.seed, "count": count}))
    small = runner.start(runner.args.server, small_db, "scale-small", redis_db=8)
    large = runner.start(runner.args.server, large_db, "scale-large", redis_db=9)
    rs_auth = basic(seeds[small_db]["rs_client_id"], seeds[small_db]["rs_secret"])
    rng = random.Random(runner.seed + "scale")

    def lines(count: int) -> Path:
        order = list(range(count))
        rng.shuffle(order)
        # The same number of distinct tokens for both tables, so both see the same pattern of
        # first sightings and repeats (cached in-process) and only the table size differs.
        picks = order[: min(s.scale_small, s.scale_large, s.sample)]
        out = []
        for j, i in enumerate(picks):
            if j % 10 == 9:
                out.append((rs_auth, "token=" + data.credential(runner.seed, "at", data.REVOKED, j)))
            else:
                out.append((rs_auth, "token=" + data.credential(runner.seed, "at", data.SCALE, i)))
        return runner.bodies(f"scale-{count}", out)

    small_lines, large_lines = lines(s.scale_small), lines(s.scale_large)
    # A fresh server's first requests pay for imports, connections and prepared statements:
    # warm both on tokens that are never measured (unknown ones: the same query path).
    for srv in (small, large):
        runner.warm(srv, rs_auth)
    res: dict[str, list[load.Result]] = {"small": [], "large": []}
    for r in range(runner.args.rounds):
        for key, srv, body in (("small", small, small_lines), ("large", large, large_lines)):
            result = runner.wrk(srv, "/oauth/introspect", f"scale-{key}", body)
            res[key].append(result)
            progress(f"scale round {r + 1}: {key} ({s.scale_small if key == 'small' else s.scale_large:,} "
                     f"tokens stored) introspection {result.rps:.0f} req/s")
    runner.stop(small)
    out = {k: {"rps": sum(x.requests for x in v) / sum(x.seconds for x in v),
               "p99_ms": max(x.p99_ms for x in v), "errors": sum(x.errors for x in v)} for k, v in res.items()}
    out["ratio"] = out["large"]["rps"] / out["small"]["rps"] if out["small"]["rps"] else None
    out["sizes"] = {"small": s.scale_small, "large": s.scale_large}
    # Latency is compared at a rate the server sustains (at most half the measured capacity),
    # so the cleanup's effect is not drowned in the queueing of an overload.
    rate = min(runner.args.rate, max(20.0, 0.5 * out["large"]["rps"]))
    out["cleanup"] = runner.phase(out, "cleanup", lambda: cleanup.run(runner, large, db=large_db, rs_auth=rs_auth,
                                                                     body_file=large_lines, rate=rate))
    runner.stop(large)
    return out
