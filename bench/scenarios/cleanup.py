# ruff: noqa: S603 - a benchmark driver: fixed local commands
"""Introspection latency while the cleanup job deletes expired tokens, against a baseline before it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import env, load, servers
from bench.env import HOST, ROOT, progress
from bench.runner import Runner


def run(runner: Runner, srv: servers.Server, *, db: str, rs_auth: str, body_file: Path, rate: float
        ) -> dict[str, Any]:
    s = runner.sizes
    seed_env = env.production_env(db, runner.data_dir(db))
    progress(f"cleanup: seeding {s.cleanup:,} expired tokens")
    env.run_python(seed_env, "bench.seed", "cleanup", json.dumps({"seed": runner.seed, "count": s.cleanup}))
    lines = [tuple(x.split("\t", 1)) for x in body_file.read_text().splitlines()]
    seconds = runner.args.open_seconds
    progress(f"cleanup: baseline open loop {rate:.0f}/s for {seconds:.0f} s")
    before = load.open_loop(HOST, srv.port, "/oauth/introspect", lines, rate=rate, seconds=seconds)
    progress(f"  before: p50 {before.p50_ms:.2f} ms p99 {before.p99_ms:.2f} ms errors {before.errors}")
    # The job runs as a worker runs it: Django is loaded first (a Celery worker is up before
    # beat fires), then the sweep starts and the measurement with it.
    job = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c",
         "from authserver.oauth.services import tokens_cleanup; import json; print('ready', flush=True); "
         "print(json.dumps(tokens_cleanup()))"],
        cwd=ROOT, env=seed_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout is not None
    job.stdout.readline()
    started = time.monotonic()
    during: list[load.Result] = []
    while job.poll() is None or not during:
        window = load.open_loop(HOST, srv.port, "/oauth/introspect", lines[::-1], rate=rate,
                                seconds=min(seconds, 10))
        if job.poll() is None or not during:
            during.append(window)
        progress(f"  during cleanup: p50 {window.p50_ms:.2f} ms p99 {window.p99_ms:.2f} ms "
                 f"errors {window.errors} (job {'running' if job.poll() is None else 'done'})")
        if time.monotonic() - started > runner.args.cleanup_timeout:
            break
    out_text, err = job.communicate(timeout=runner.args.cleanup_timeout)
    elapsed = time.monotonic() - started
    counts = json.loads(out_text.strip().splitlines()[-1]) if job.returncode == 0 and out_text.strip() else {}
    samples = sorted(x for w in during for x in w.samples)
    p99 = samples[int(len(samples) * 0.99)] * 1000 if samples else 0.0
    p50 = samples[len(samples) // 2] * 1000 if samples else 0.0
    progress(f"cleanup job: {counts} in {elapsed:.1f} s; introspection p99 {before.p99_ms:.2f} -> {p99:.2f} ms")
    return {"deleted": counts.get("access_tokens"), "job_seconds": elapsed, "rate": rate,
            "p50_before_ms": before.p50_ms, "p99_before_ms": before.p99_ms, "p50_during_ms": p50,
            "p99_during_ms": p99, "errors": before.errors + sum(w.errors for w in during),
            "p99_increase": (p99 / before.p99_ms - 1) if before.p99_ms else None,
            "job_error": err[-500:] if job.returncode else None}
