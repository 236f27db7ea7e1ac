"""Where a request's time goes: ``uv run python -m bench.profile [--scenario client_credentials]``.

Seeds the bench's data set (PostgreSQL, Redis, production settings, as ``python -m bench`` does),
then replays the scenario's requests in one process through the WSGI application under cProfile
(no server, no network: only the application's own work and its database and Redis round trips)
and prints the microseconds per request and the functions that cost the most. The profiles in the
notes of docs/performance.md come from this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

from bench import env, workload
from bench.env import progress
from bench.runner import Runner

PATHS = {"client_credentials": "/oauth/token", "authorization_code": "/oauth/token", "refresh_token": "/oauth/token",
         "introspect_hot": "/oauth/introspect", "apikey_hot": "/oauth/introspect", "bare": "/bench/bare"}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="client_credentials", choices=sorted(PATHS))
    p.add_argument("--requests", type=int, default=2000, help="profiled requests (after 200 unprofiled)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--seed", default="bench-1")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import databases  # noqa: PLC0415 - the bench's own seeding, shared

    args = parse(sys.argv[1:] if argv is None else argv)
    runner = Runner(SimpleNamespace(small=True, seed=args.seed, keep=False, workers=1, seconds=1, connections=1,
                                    threads=1))
    try:
        seeded = databases(runner)
        workload.request_sets(runner, seeded)
        lines = runner.lines[args.scenario][: args.requests + 200]
        plan = json.dumps({"path": PATHS[args.scenario], "lines": lines, "top": args.top})
        (runner.work / "plan.json").write_text(plan)
        progress(f"profiling {args.scenario}: {len(lines) - 200} requests after 200 unprofiled")
        server_env = env.production_env("authserver_bench", runner.data_dir("authserver_bench"))
        print(env.run_python(server_env, "bench.profile_worker", str(runner.work / "plan.json")))
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
