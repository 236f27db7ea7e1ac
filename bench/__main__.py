"""The bench: ``uv run python -m bench`` (full) or ``uv run python -m bench --small`` (CI).

Starts the authserver as production runs it (PostgreSQL, Redis, production settings, DEBUG off,
the production WSGI server), seeds a data set with bulk SQL, and measures, interleaving rounds:
a bare Django JSON view on the same process and middleware (the baseline of every ratio),
introspection (hot and cold, valid/expired/revoked/garbage mix), API-key verification, the token
endpoint (client credentials, code exchange, refresh), vanilla django-oauth-toolkit 3.4.1 in a
scratch environment, open-loop latency at a fixed rate, revocation fan-out, 10k vs 1M stored
tokens, and introspection latency while the cleanup job deletes expired tokens. Prints one table
and writes it as JSON (``bench/results/latest.json`` unless ``--json``). Progress goes to stderr.

The scenarios are in :mod:`bench.scenarios`, what they send in :mod:`bench.workload`, the shared
run state in :mod:`bench.runner` and the verdict in :mod:`bench.report`; this module parses the
command line and runs the phases in order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench import data, dot, env, load, servers, workload
from bench.env import ROOT, progress
from bench.report import goals, table
from bench.runner import Runner, basic
from bench.scenarios import compare_servers, kit, open_loop, revocation, scale, throughput

PRODUCTION_SERVER = "granian"  # docker-entrypoint.sh `web`, behind the TLS proxy


def databases(runner: Runner) -> dict[str, Any]:
    """Migrate a template database, clone the main one from it and seed it; the seeded facts."""
    progress("databases: migrating a template (production settings)")
    env.recreate_database("authserver_bench_template")
    template_env = env.production_env("authserver_bench_template", runner.data_dir("authserver_bench_template"))
    # As the production migrate role does: the schema, then the key store every process shares
    # (a server is not ready without one).
    env.manage(template_env, "migrate_locked")
    env.recreate_database("authserver_bench", template="authserver_bench_template")
    s = runner.sizes
    progress(f"seeding: {s.live:,} live + {s.expired:,} expired tokens, {s.clients:,} clients, {s.keys:,} API "
             f"keys, {s.codes:,} codes, {s.refresh:,} refresh tokens")
    main_env = env.production_env("authserver_bench", runner.data_dir("authserver_bench"))
    out = env.run_python(main_env, "bench.seed", "main", json.dumps({"sizes": s.as_dict(), "seed": runner.seed}))
    return json.loads(out.strip().splitlines()[-1])


def vanilla_dot(runner: Runner) -> tuple[servers.Server, dict[str, str]] | None:
    if runner.args.no_dot:
        return None
    python = dot.ensure_venv()
    env.recreate_database("authserver_bench_dot")
    root = dot.write_project(runner.work / "dot", "authserver_bench_dot")
    progress(f"vanilla DOT {dot.DOT_VERSION}: migrating and seeding {runner.sizes.dot_tokens:,} tokens")
    secrets = dot.setup(python, root, runner.seed, runner.sizes.dot_tokens)
    srv = servers.start(runner.args.server, dot.env_for(root), runner.work, workers=runner.args.workers,
                        app="dotproj.wsgi:application", cwd=root, python=str(python), name="vanilla-dot")
    runner.running.append(srv)
    return srv, secrets


def run(runner: Runner) -> dict[str, Any]:
    a = runner.args
    report: dict[str, Any] = {"command": " ".join(["python -m bench", *sys.argv[1:]]), "server": a.server,
                              "workers": a.workers, "sizes": runner.sizes.as_dict(),
                              "wrk": {"threads": a.threads, "connections": a.connections, "seconds": a.seconds,
                                      "rounds": a.rounds},
                              "machine": {"cpus": len(os.sched_getaffinity(0))}}
    seeded = databases(runner)
    bodies = workload.request_sets(runner, seeded)
    dot_pair = vanilla_dot(runner)
    dot_srv, dot_bodies = (dot_pair[0], workload.dot_sets(runner, dot_pair[1])) if dot_pair else (None, {})
    progress(f"starting the authserver ({a.server}, {a.workers} workers, production settings)")
    if dot_srv is not None:  # warmed like ours: one unmeasured second
        runner.wrk(dot_srv, "/o/introspect/", "dot-warm", dot_bodies["dot_introspect_bearer"], seconds=1)
    srv = runner.start(a.server, "authserver_bench", "authserver")
    runner.warm(srv, basic(seeded["rs_client_id"], seeded["rs_secret"]))
    report["throughput"] = throughput.run(runner, srv, bodies, dot_srv=dot_srv, dot_bodies=dot_bodies,
                                          rounds=a.rounds, label="throughput")
    if dot_srv is not None:
        runner.stop(dot_srv)
    report["kit"] = runner.phase(report, "kit", lambda: kit.run(runner, srv, seeded))
    report["open_loop"] = runner.phase(report, "open_loop", lambda: open_loop.run(runner, srv))
    report["revocation"] = runner.phase(report, "revocation",
                                        lambda: revocation.run(runner, srv, seeded, trials=a.revocation_trials))
    runner.stop(srv)
    if a.compare:
        report["servers"] = runner.phase(report, "servers", lambda: compare_servers.run(runner, bodies))
    if not a.skip_scale:
        report["scale"] = runner.phase(report, "scale", lambda: scale.run(runner))
    report["goals"] = goals(report)
    return report


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="the small, fast configuration (CI)")
    p.add_argument("--server", default=PRODUCTION_SERVER, choices=servers.SERVERS)
    p.add_argument("--compare", default=None, help="comma-separated other servers to compare (default: all)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=None, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--rate", type=float, default=None, help="open-loop introspections per second")
    p.add_argument("--token-rate", type=float, default=200.0, help="open-loop client_credentials tokens per second")
    p.add_argument("--open-seconds", type=float, default=None)
    p.add_argument("--revocation-trials", type=int, default=None)
    p.add_argument("--cleanup-timeout", type=float, default=900)
    p.add_argument("--only", default="", help="comma-separated throughput scenarios")
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--no-dot", action="store_true", help="skip vanilla django-oauth-toolkit")
    p.add_argument("--seed", default="bench-1")
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "latest.json"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, request files)")
    for f in fields(data.Sizes):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=None, help=f"size: {f.name}")
    args = p.parse_args(argv)
    small = args.small
    args.seconds = args.seconds or (1.0 if small else 5.0)
    args.rounds = args.rounds or (1 if small else 3)
    args.rate = args.rate or 1000.0
    args.open_seconds = args.open_seconds or (3.0 if small else 20.0)
    args.revocation_trials = args.revocation_trials or (2 if small else 5)
    if args.compare is None:
        args.compare = [] if small else list(servers.SERVERS)
    else:
        args.compare = [x for x in args.compare.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if not load.wrk_available():
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    runner = Runner(args)
    try:
        report = run(runner)
    finally:
        runner.close()
    text = table(report)
    report["table"] = text
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(text)
    print(f"\nJSON: {path}")
    return 1 if report.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
