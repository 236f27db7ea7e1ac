# ruff: noqa: S311, S603 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""The bench: ``uv run python -m bench`` (full) or ``uv run python -m bench --small`` (CI).

Starts the authserver as production runs it (PostgreSQL, Redis, production settings, DEBUG off,
the production WSGI server), seeds a data set with bulk SQL, and measures, interleaving rounds:
a bare Django JSON view on the same process and middleware (the baseline of every ratio),
introspection (hot and cold, valid/expired/revoked/garbage mix), API-key verification, the token
endpoint (client credentials, code exchange, refresh), vanilla django-oauth-toolkit 3.4.1 in a
scratch environment, open-loop latency at a fixed rate, revocation fan-out, 10k vs 1M stored
tokens, and introspection latency while the cleanup job deletes expired tokens. Prints one table
and writes it as JSON (``bench/results/latest.json`` unless ``--json``). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench import data, dot, env, load, servers
from bench.env import HOST, ROOT, progress

PRODUCTION_SERVER = "granian"  # docker-entrypoint.sh `web`, behind the TLS proxy


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- request mixes -----------------------------------------------------------------------------------
def token_mix(seed: str, sizes: data.Sizes, *, hot: bool, count: int, rng: random.Random) -> list[str]:
    """Introspection targets. Hot: 85% a small set of recently seen live tokens, 5% each expired,
    revoked, garbage. Cold: 70% live tokens drawn at random over the whole set (each at most once),
    10% expired, 10% revoked (deleted rows, and tokens of a compromised client), 10% garbage."""
    valid_share = 0.85 if hot else 0.70
    other_share = (1 - valid_share) / 3
    live_order = list(range(sizes.live))
    rng.shuffle(live_order)
    out, v = [], 0
    compromised = max(100, sizes.live // 100)
    for _ in range(count):
        r = rng.random()
        if r < valid_share:
            idx = rng.randrange(min(sizes.hot_set, sizes.live)) if hot else live_order[v % len(live_order)]
            v += 1
            out.append(data.credential(seed, "at", data.LIVE, idx))
        elif r < valid_share + other_share:
            out.append(data.credential(seed, "at", data.EXPIRED, rng.randrange(sizes.expired)))
        elif r < valid_share + 2 * other_share:
            if rng.random() < 0.5:
                out.append(data.credential(seed, "at", data.REVOKED, rng.randrange(10**9)))
            else:
                out.append(data.credential(seed, "at", data.COMPROMISED, rng.randrange(compromised)))
        else:
            out.append(data.garbage(seed, rng.randrange(10**6)))
    return out


def key_mix(seed: str, sizes: data.Sizes, *, hot: bool, count: int, rng: random.Random) -> list[str]:
    """The same shape for API keys: valid (active), expired, revoked, garbage."""
    active = [i for i in range(sizes.keys) if data.key_state(i) == "active"]
    expired = [i for i in range(sizes.keys) if data.key_state(i) == "expired"]
    revoked = [i for i in range(sizes.keys) if data.key_state(i) == "revoked"]
    hot_keys = active[: max(1, min(len(active), sizes.hot_set // 4))]
    valid_share = 0.85 if hot else 0.70
    other_share = (1 - valid_share) / 3
    out = []
    for _ in range(count):
        r = rng.random()
        if r < valid_share:
            out.append(data.credential(seed, "ak", data.KEY, rng.choice(hot_keys if hot else active)))
        elif r < valid_share + other_share:
            out.append(data.credential(seed, "ak", data.KEY, rng.choice(expired or active)))
        elif r < valid_share + 2 * other_share:
            out.append(data.credential(seed, "ak", data.KEY, rng.choice(revoked or active)))
        else:
            good = data.credential(seed, "ak", data.KEY, rng.choice(active))
            out.append(good[:-1] + ("A" if good[-1] != "A" else "B"))
    return out


# --- the run -------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = data.SMALL if args.small else data.Sizes()
        for f in fields(data.Sizes):
            value = getattr(args, f.name, None)
            if value is not None:
                setattr(self.sizes, f.name, value)
        self.seed = args.seed
        self.work = Path(tempfile.mkdtemp(prefix="authserver-bench-"))
        self.running: list[servers.Server] = []
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.offsets: dict[str, int] = {}
        self.rng = random.Random(self.seed)

    # -- plumbing ---------------------------------------------------------------------------------
    def data_dir(self, db: str) -> Path:
        """One data directory for every process: the databases are cloned from one template, so
        they share the template's wrapped data keys and need its key store."""
        path = self.work / "data"
        path.mkdir(exist_ok=True)
        return path

    def start(self, kind: str, db: str, name: str, redis_db: int = 7) -> servers.Server:
        data_dir = self.data_dir(db)
        server_env = env.production_env(db, data_dir, env.redis_url().rsplit("/", 1)[0] + f"/{redis_db}")
        srv = servers.start(kind, server_env, self.work, workers=self.args.workers, name=name)
        self.running.append(srv)
        return srv

    def stop(self, srv: servers.Server) -> None:
        srv.stop()
        self.running.remove(srv)

    def bodies(self, name: str, lines: list[tuple[str, str]]) -> Path:
        return load.write_bodies(self.work / f"{name}.lines", lines)

    def wrk(self, srv: servers.Server, path: str, name: str, bodies: Path, seconds: float | None = None,
            connections: int | None = None) -> load.Result:
        start = self.offsets.get(name, 0)
        result = load.run_wrk(srv.url, path, bodies, seconds=seconds or self.args.seconds,
                              connections=connections or self.args.connections, threads=self.args.threads,
                              start=start, workdir=self.work)
        # wrk counts completed requests; up to one per connection was sent and not counted when the
        # run stopped. Skip those too: a code or refresh token is single-use, and replaying one
        # (reuse detection) is not what the next round measures.
        self.offsets[name] = start + result.requests + (connections or self.args.connections) + self.args.threads
        return result

    def warm(self, srv: servers.Server, rs_auth: str) -> None:
        """A fresh server's first requests pay for imports, connections and prepared statements:
        one unmeasured second of the bare view and of introspection of unknown tokens (the query
        path, on tokens no scenario uses)."""
        unknown = [data.credential(self.seed, "at", data.REVOKED, 10**7 + j) for j in range(2000)]
        body = self.bodies("warm", [(rs_auth, "token=" + token) for token in unknown])
        self.wrk(srv, servers_bare_path(), "warm-bare", body, seconds=1)
        self.wrk(srv, "/oauth/introspect", "warm", body, seconds=1)

    # -- phases -----------------------------------------------------------------------------------
    def databases(self) -> dict[str, Any]:
        progress("databases: migrating a template (production settings)")
        env.recreate_database("authserver_bench_template")
        template_env = env.production_env("authserver_bench_template", self.data_dir("authserver_bench_template"))
        env.manage(template_env, "migrate", "--noinput")
        env.recreate_database("authserver_bench", template="authserver_bench_template")
        s = self.sizes
        progress(f"seeding: {s.live:,} live + {s.expired:,} expired tokens, {s.clients:,} clients, {s.keys:,} API "
                 f"keys, {s.codes:,} codes, {s.refresh:,} refresh tokens")
        main_env = env.production_env("authserver_bench", self.data_dir("authserver_bench"))
        out = env.run_python(main_env, "bench.seed", "main", json.dumps({"sizes": s.as_dict(), "seed": self.seed}))
        return json.loads(out.strip().splitlines()[-1])

    def vanilla_dot(self) -> tuple[servers.Server, dict[str, str]] | None:
        if self.args.no_dot:
            return None
        python = dot.ensure_venv()
        env.recreate_database("authserver_bench_dot")
        root = dot.write_project(self.work / "dot", "authserver_bench_dot")
        progress(f"vanilla DOT {dot.DOT_VERSION}: migrating and seeding {self.sizes.dot_tokens:,} tokens")
        secrets = dot.setup(python, root, self.seed, self.sizes.dot_tokens)
        srv = servers.start(self.args.server, dot.env_for(root), self.work, workers=self.args.workers,
                            app="dotproj.wsgi:application", cwd=root, python=str(python), name="vanilla-dot")
        self.running.append(srv)
        return srv, secrets

    def request_sets(self, seeded: dict[str, Any]) -> dict[str, Path]:
        s, seed, rng = self.sizes, self.seed, self.rng
        rs_auth = basic(seeded["rs_client_id"], seeded["rs_secret"])
        web_auth = basic(seeded["web_client_id"], seeded["web_secret"])
        n = s.sample
        sets = {
            "bare": [(rs_auth, "token=" + t) for t in token_mix(seed, s, hot=True, count=min(n, 2000), rng=rng)],
            "introspect_hot": [(rs_auth, "token=" + t) for t in token_mix(seed, s, hot=True, count=n, rng=rng)],
            "introspect_cold": [(rs_auth, "token=" + t) for t in token_mix(seed, s, hot=False, count=n, rng=rng)],
            "apikey_hot": [(rs_auth, "token=" + t) for t in key_mix(seed, s, hot=True, count=n, rng=rng)],
            "apikey_cold": [(rs_auth, "token=" + t) for t in key_mix(seed, s, hot=False, count=n, rng=rng)],
        }
        machine = seeded["machine_client_ids"]
        sets["client_credentials"] = []
        for _ in range(min(n, 20_000)):
            i = rng.randrange(len(machine))
            secret = data.credential(seed, "cs", data.CLIENT_SECRET, seeded["machine_secret_base"] + i)
            sets["client_credentials"].append((basic(machine[i], secret), "grant_type=client_credentials"))
        from urllib.parse import quote

        redirect = quote(data.REDIRECT_URI, safe="")
        sets["authorization_code"] = [
            (web_auth, f"grant_type=authorization_code&code={data.credential(seed, 'ac', data.CODE, i)}"
                       f"&redirect_uri={redirect}&code_verifier={data.CODE_VERIFIER}") for i in range(s.codes)]
        sets["refresh_token"] = [
            (web_auth, f"grant_type=refresh_token&refresh_token={data.credential(seed, 'rt', data.REFRESH, i)}")
            for i in range(s.refresh)]
        self.lines = sets
        return {name: self.bodies(name, lines) for name, lines in sets.items()}

    def dot_sets(self, secrets: dict[str, str]) -> dict[str, Path]:
        rng, s = self.rng, self.sizes

        def dot_targets(count: int) -> list[str]:
            out = []
            for _ in range(count):
                r = rng.random()
                if r < 0.9:
                    out.append(dot.dot_token(self.seed, rng.randrange(s.dot_tokens)))
                else:
                    out.append(data.garbage(self.seed, rng.randrange(10**6)))
            return out

        bearer = "Bearer " + secrets["introspector"]
        rs = basic("dot-rs", secrets["rs_secret"])
        svc = basic("dot-svc", secrets["svc_secret"])
        return {
            "dot_introspect_bearer": self.bodies("dot_bearer", [(bearer, "token=" + t) for t in dot_targets(20_000)]),
            "dot_introspect_basic": self.bodies("dot_basic", [(rs, "token=" + t) for t in dot_targets(2_000)]),
            "dot_client_credentials": self.bodies("dot_cc", [(svc, "grant_type=client_credentials")] * 100),
        }

    def throughput(self, srv: servers.Server, bodies: dict[str, Path], dot_srv: servers.Server | None,
                   dot_bodies: dict[str, Path], rounds: int, label: str) -> dict[str, dict[str, Any]]:
        """Rounds of [bare, scenario] pairs; vanilla DOT runs right after the scenario it is compared to."""
        ours = [("introspect_hot", "/oauth/introspect"), ("introspect_cold", "/oauth/introspect"),
                ("apikey_hot", "/oauth/introspect"), ("apikey_cold", "/oauth/introspect"),
                ("client_credentials", "/oauth/token"), ("authorization_code", "/oauth/token"),
                ("refresh_token", "/oauth/token")]
        dots = {"introspect_hot": ["dot_introspect_bearer", "dot_introspect_basic"],
                "client_credentials": ["dot_client_credentials"]}
        dot_paths = {"dot_introspect_bearer": "/o/introspect/", "dot_introspect_basic": "/o/introspect/",
                     "dot_client_credentials": "/o/token/"}
        only = set(self.args.only.split(",")) if self.args.only else None
        results: dict[str, list[tuple[load.Result, load.Result | None]]] = {}
        for r in range(rounds):
            for name, path in ours:
                if only and name not in only:
                    continue
                progress(f"{label} round {r + 1}/{rounds}: bare view, then {name}")
                bare = self.wrk(srv, servers_bare_path(), "bare", bodies["bare"])
                res = self.wrk(srv, path, name, bodies[name])
                results.setdefault(name, []).append((res, bare))
                progress(f"  bare {bare.rps:8.0f} req/s | {name} {res.rps:8.0f} req/s p99 {res.p99_ms:.2f} ms "
                         f"errors {res.errors}")
                if dot_srv is not None:
                    for dname in dots.get(name, []):
                        dres = self.wrk(dot_srv, dot_paths[dname], dname, dot_bodies[dname],
                                        seconds=max(self.args.seconds, 3))
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

    def open_loop(self, srv: servers.Server) -> dict[str, Any]:
        rate, seconds = self.args.rate, self.args.open_seconds
        mixed = [x for pair in zip(self.lines["introspect_hot"], self.lines["introspect_cold"][::-1], strict=False)
                 for x in pair]
        # The bare view at the same rate first: the floor (load generator, TCP, WSGI server).
        progress(f"open loop: the bare view at {rate:.0f}/s for {seconds:.0f} s (the floor)")
        bare = load.open_loop(HOST, srv.port, servers_bare_path(), self.lines["bare"], rate=rate, seconds=seconds)
        wait_until_idle(srv)
        progress(f"  bare p50 {bare.p50_ms:.2f} ms p99 {bare.p99_ms:.2f} ms errors {bare.errors}")
        progress(f"open loop: {rate:.0f} introspections/s for {seconds:.0f} s (half hot, half cold)")
        res = load.open_loop(HOST, srv.port, "/oauth/introspect", mixed, rate=rate, seconds=seconds)
        wait_until_idle(srv)
        progress(f"  p50 {res.p50_ms:.2f} ms p99 {res.p99_ms:.2f} ms p99.9 {res.p999_ms:.2f} ms errors {res.errors}")
        return {"rate": rate, "seconds": seconds, "p50_ms": res.p50_ms, "p99_ms": res.p99_ms,
                "p999_ms": res.p999_ms, "errors": res.errors, "requests": res.requests,
                "bare": {"p50_ms": bare.p50_ms, "p99_ms": bare.p99_ms, "p999_ms": bare.p999_ms, "errors": bare.errors}}

    def revocation(self, srv: servers.Server, seeded: dict[str, Any], trials: int) -> dict[str, Any]:
        """Issue a token, get it cached in every worker, revoke it, then watch: the time from the
        revocation's response to the sending of the last request any worker answers ``active: true``."""
        rs_auth = basic(seeded["rs_client_id"], seeded["rs_secret"])
        client_id = seeded["machine_client_ids"][0]
        secret = data.credential(self.seed, "cs", data.CLIENT_SECRET, seeded["machine_secret_base"])
        svc_auth = basic(client_id, secret)

        def post(path: str, body: str, auth: str) -> tuple[int, bytes]:
            try:
                conn = http.client.HTTPConnection(HOST, srv.port, timeout=10)
                conn.request("POST", path, body=body, headers={
                    "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded",
                    "X-Forwarded-Proto": "https", "Connection": "close"})
                resp = conn.getresponse()
                out = resp.status, resp.read()
                conn.close()
                return out
            except OSError as exc:
                return 0, str(exc).encode()

        wait_until_idle(srv)

        worst, samples = 0.0, []
        for t in range(trials):
            status, body = post("/oauth/token", "grant_type=client_credentials", svc_auth)
            if status != 200:
                progress(f"revocation trial {t + 1}: token request failed ({status})")
                continue
            token = json.loads(body)["access_token"]
            warm = [post("/oauth/introspect", f"token={token}", rs_auth) for _ in range(30)]
            if not all(b'"active": true' in b for _, b in warm):
                progress(f"revocation trial {t + 1}: warm-up introspection failed")
            last_active = [0.0]
            stop = threading.Event()

            def watch(token: str, stop: threading.Event, last_active: list[float]) -> None:
                while not stop.is_set():
                    sent = time.monotonic()  # an answer counts from when its request was sent
                    _, b = post("/oauth/introspect", f"token={token}", rs_auth)
                    if b'"active": true' in b:
                        last_active[0] = max(last_active[0], sent)

            watchers = [threading.Thread(target=watch, args=(token, stop, last_active)) for _ in range(4)]
            for w in watchers:
                w.start()
            time.sleep(0.3)
            status, _ = post("/oauth/revoke", f"token={token}&token_type_hint=access_token", svc_auth)
            revoked_at = time.monotonic()
            if status != 200:
                progress(f"revocation trial {t + 1}: revocation failed ({status})")
            time.sleep(1.5)
            stop.set()
            for w in watchers:
                w.join()
            seen = max(0.0, last_active[0] - revoked_at)
            samples.append(seen)
            worst = max(worst, seen)
            progress(f"revocation trial {t + 1}/{trials}: last active answer {seen * 1000:.0f} ms after revoke")
        return {"trials": trials, "worst_ms": worst * 1000, "samples_ms": [round(x * 1000, 1) for x in samples]}

    def scale(self) -> dict[str, Any]:
        s = self.sizes
        small_db, large_db = "authserver_bench_scale_small", "authserver_bench_scale_large"
        seeds = {}
        for db, count in ((small_db, s.scale_small), (large_db, s.scale_large)):
            env.recreate_database(db, template="authserver_bench_template")
            seed_env = env.production_env(db, self.data_dir(db))
            tiny = data.Sizes(live=0, expired=0, clients=min(s.clients, 100), keys=0, codes=0, refresh=0)
            seeds[db] = json.loads(env.run_python(seed_env, "bench.seed", "main",
                                                  json.dumps({"sizes": tiny.as_dict(), "seed": self.seed})
                                                  ).strip().splitlines()[-1])
            progress(f"scale: seeding {count:,} live tokens into {db}")
            env.run_python(seed_env, "bench.seed", "scale", json.dumps({"seed": self.seed, "count": count}))
        small = self.start(self.args.server, small_db, "scale-small", redis_db=8)
        large = self.start(self.args.server, large_db, "scale-large", redis_db=9)
        rs_auth = basic(seeds[small_db]["rs_client_id"], seeds[small_db]["rs_secret"])
        rng = random.Random(self.seed + "scale")

        def lines(count: int) -> Path:
            order = list(range(count))
            rng.shuffle(order)
            # The same number of distinct tokens for both tables, so both see the same pattern of
            # first sightings and repeats (cached in-process) and only the table size differs.
            picks = order[: min(s.scale_small, s.scale_large, s.sample)]
            out = []
            for j, i in enumerate(picks):
                if j % 10 == 9:
                    out.append((rs_auth, "token=" + data.credential(self.seed, "at", data.REVOKED, j)))
                else:
                    out.append((rs_auth, "token=" + data.credential(self.seed, "at", data.SCALE, i)))
            return self.bodies(f"scale-{count}", out)

        small_lines, large_lines = lines(s.scale_small), lines(s.scale_large)
        # A fresh server's first requests pay for imports, connections and prepared statements:
        # warm both on tokens that are never measured (unknown ones: the same query path).
        for srv in (small, large):
            self.warm(srv, rs_auth)
        res: dict[str, list[load.Result]] = {"small": [], "large": []}
        for r in range(self.args.rounds):
            for key, srv, body in (("small", small, small_lines), ("large", large, large_lines)):
                result = self.wrk(srv, "/oauth/introspect", f"scale-{key}", body)
                res[key].append(result)
                progress(f"scale round {r + 1}: {key} ({s.scale_small if key == 'small' else s.scale_large:,} "
                         f"tokens stored) introspection {result.rps:.0f} req/s")
        self.stop(small)
        out = {k: {"rps": sum(x.requests for x in v) / sum(x.seconds for x in v),
                   "p99_ms": max(x.p99_ms for x in v), "errors": sum(x.errors for x in v)} for k, v in res.items()}
        out["ratio"] = out["large"]["rps"] / out["small"]["rps"] if out["small"]["rps"] else None
        out["sizes"] = {"small": s.scale_small, "large": s.scale_large}
        # Latency is compared at a rate the server sustains (at most half the measured capacity),
        # so the cleanup's effect is not drowned in the queueing of an overload.
        rate = min(self.args.rate, max(20.0, 0.5 * out["large"]["rps"]))
        out["cleanup"] = self.phase(out, "cleanup",
                                    lambda: self.cleanup(large, large_db, rs_auth, large_lines, rate))
        self.stop(large)
        return out

    def cleanup(self, srv: servers.Server, db: str, rs_auth: str, body_file: Path, rate: float) -> dict[str, Any]:
        s = self.sizes
        seed_env = env.production_env(db, self.data_dir(db))
        progress(f"cleanup: seeding {s.cleanup:,} expired tokens")
        env.run_python(seed_env, "bench.seed", "cleanup", json.dumps({"seed": self.seed, "count": s.cleanup}))
        lines = [tuple(x.split("\t", 1)) for x in body_file.read_text().splitlines()]
        seconds = self.args.open_seconds
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
            if time.monotonic() - started > self.args.cleanup_timeout:
                break
        out_text, err = job.communicate(timeout=self.args.cleanup_timeout)
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

    def compare_servers(self, bodies: dict[str, Path]) -> dict[str, Any]:
        out = {}
        for kind in self.args.compare:
            if kind == self.args.server:
                continue
            progress(f"server comparison: {kind}")
            srv = self.start(kind, "authserver_bench", f"compare-{kind}")
            self.warm(srv, self.lines["bare"][0][0])
            try:
                summary = {}
                for name, path in (("introspect_hot", "/oauth/introspect"), ("introspect_cold", "/oauth/introspect"),
                                   ("client_credentials", "/oauth/token")):
                    bare = self.wrk(srv, servers_bare_path(), "bare", bodies["bare"])
                    res = self.wrk(srv, path, name, bodies[name])
                    summary[name] = {"rps": res.rps, "p99_ms": res.p99_ms, "bare_rps": bare.rps,
                                     "vs_bare": res.rps / bare.rps if bare.rps else None, "errors": res.errors}
                    progress(f"  {kind}: bare {bare.rps:.0f} req/s, {name} {res.rps:.0f} req/s")
                out[kind] = summary
            finally:
                self.stop(srv)
        return out

    def run(self) -> dict[str, Any]:
        a = self.args
        report: dict[str, Any] = {"command": " ".join(["python -m bench", *sys.argv[1:]]), "server": a.server,
                                  "workers": a.workers, "sizes": self.sizes.as_dict(),
                                  "wrk": {"threads": a.threads, "connections": a.connections, "seconds": a.seconds,
                                          "rounds": a.rounds},
                                  "machine": {"cpus": _cpus()}}
        seeded = self.databases()
        bodies = self.request_sets(seeded)
        dot_pair = self.vanilla_dot()
        dot_srv, dot_bodies = (dot_pair[0], self.dot_sets(dot_pair[1])) if dot_pair else (None, {})
        progress(f"starting the authserver ({a.server}, {a.workers} workers, production settings)")
        if dot_srv is not None:  # warmed like ours: one unmeasured second
            self.wrk(dot_srv, "/o/introspect/", "dot-warm", dot_bodies["dot_introspect_bearer"], seconds=1)
        srv = self.start(a.server, "authserver_bench", "authserver")
        self.warm(srv, basic(seeded["rs_client_id"], seeded["rs_secret"]))
        report["throughput"] = self.throughput(srv, bodies, dot_srv, dot_bodies, a.rounds, "throughput")
        if dot_srv is not None:
            self.stop(dot_srv)
        report["open_loop"] = self.phase(report, "open_loop", lambda: self.open_loop(srv))
        report["revocation"] = self.phase(report, "revocation",
                                          lambda: self.revocation(srv, seeded, a.revocation_trials))
        self.stop(srv)
        if a.compare:
            report["servers"] = self.phase(report, "servers", lambda: self.compare_servers(bodies))
        if not a.skip_scale:
            report["scale"] = self.phase(report, "scale", self.scale)
        report["goals"] = goals(report)
        return report

    @staticmethod
    def phase(report: dict[str, Any], name: str, run: Any) -> Any:
        """A failed phase is reported (and makes the run exit non-zero) without losing the others."""
        try:
            return run()
        except Exception as exc:  # noqa: BLE001
            progress(f"phase {name} failed: {exc!r}")
            report.setdefault("failures", []).append(f"{name}: {exc!r}")
            return None

    def close(self) -> None:
        for srv in list(self.running):
            srv.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def wait_until_idle(srv: servers.Server, timeout: float = 120) -> None:
    """After an overload (open loop above capacity) let the server drain its accept queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            started = time.monotonic()
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=5)
            conn.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
            conn.getresponse().read()
            conn.close()
            if time.monotonic() - started < 0.05:
                return
        except OSError:
            pass
        time.sleep(0.5)


def servers_bare_path() -> str:
    return "/bench/bare"  # authserver.machine.BASELINE_PATH, mounted by AUTHSERVER_BENCH_BASELINE=1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


# --- goals and the table -----------------------------------------------------------------------------
def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    t = report.get("throughput", {})
    out: list[dict[str, Any]] = []

    def goal(name: str, value: float | None, target: float, higher: bool = True, unit: str = "") -> None:
        met = None if value is None else (value >= target if higher else value <= target)
        out.append({"goal": name, "value": value, "target": target, "higher_is_better": higher, "met": met,
                    "unit": unit})

    def ratio(a: str, b: str) -> float | None:
        if a in t and b in t and t[b]["rps"]:
            return t[a]["rps"] / t[b]["rps"]
        return None

    goal("introspection hot / bare view", t.get("introspect_hot", {}).get("vs_bare"), 0.8)
    goal("introspection cold / bare view", t.get("introspect_cold", {}).get("vs_bare"), 0.45)
    goal("introspection / vanilla DOT (Bearer)", ratio("introspect_hot", "dot_introspect_bearer"), 15)
    goal("introspection / vanilla DOT (Basic)", ratio("introspect_hot", "dot_introspect_basic"), 500)
    goal("API-key verification (hot) / bare view", t.get("apikey_hot", {}).get("vs_bare"), 0.8)
    goal("client_credentials / bare view", t.get("client_credentials", {}).get("vs_bare"), 0.3)
    goal("client_credentials / vanilla DOT", ratio("client_credentials", "dot_client_credentials"), 200)
    ol = report.get("open_loop") or {}
    goal(f"open loop {ol.get('rate', 0):.0f}/s p50", ol.get("p50_ms"), 1.0, higher=False, unit="ms")
    goal(f"open loop {ol.get('rate', 0):.0f}/s p99", ol.get("p99_ms"), 5.0, higher=False, unit="ms")
    goal("open loop errors", ol.get("errors"), 0, higher=False)
    goal("revocation seen by every worker", (report.get("revocation") or {}).get("worst_ms"), 1000, higher=False,
         unit="ms")
    sc = report.get("scale") or {}
    goal("throughput large / small token table", sc.get("ratio"), 0.9)
    inc = (sc.get("cleanup") or {}).get("p99_increase")
    goal("p99 increase during cleanup", None if inc is None else inc * 100, 25, higher=False, unit="%")
    return out


def table(report: dict[str, Any]) -> str:
    t = report.get("throughput", {})
    dot_of = {"introspect_hot": "dot_introspect_bearer", "introspect_cold": "dot_introspect_bearer",
              "client_credentials": "dot_client_credentials"}
    lines = [f"{'scenario':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} {'x DOT':>8} {'errors':>7}",
             "-" * 87]

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    if "introspect_hot" in t and t["introspect_hot"].get("bare_rps"):
        lines.append(f"{'bare Django JSON view (baseline)':<34} {t['introspect_hot']['bare_rps']:>9.0f} "
                     f"{'':>8} {'':>8} {1.0:>7.2f} {'-':>8} {'':>7}")
    for name, row in t.items():
        dname = dot_of.get(name)
        x_dot = row["rps"] / t[dname]["rps"] if dname in t and t[dname]["rps"] else None
        if name == "introspect_hot" and "dot_introspect_basic" in t and t["dot_introspect_basic"]["rps"]:
            extra = f"  (x DOT Basic {row['rps'] / t['dot_introspect_basic']['rps']:.0f})"
        else:
            extra = ""
        label = ("vanilla DOT: " + name[4:]) if name.startswith("dot_") else name
        lines.append(f"{label:<34} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                     f"{fmt(row.get('vs_bare'), '7.2f'):>7} {fmt(x_dot, '8.0f'):>8} {row['errors']:>7}{extra}")
    ol = report.get("open_loop")
    if ol and ol.get("bare"):
        floor = ol["bare"]
        lines.append(f"{'open loop ' + format(ol['rate'], '.0f') + '/s bare view (floor)':<34} {ol['rate']:>9.0f} "
                     f"{floor['p50_ms']:>8.2f} {floor['p99_ms']:>8.2f} {'':>7} {'':>8} {floor['errors']:>7}"
                     f"  p99.9 {floor['p999_ms']:.2f} ms")
    if ol:
        lines.append(f"{'open loop ' + format(ol['rate'], '.0f') + '/s introspection':<34} {ol['rate']:>9.0f} "
                     f"{ol['p50_ms']:>8.2f} {ol['p99_ms']:>8.2f} {'':>7} {'':>8} {ol['errors']:>7}"
                     f"  p99.9 {ol['p999_ms']:.2f} ms")
    rv = report.get("revocation")
    if rv:
        lines.append(f"{'revocation seen by every worker':<34} worst {rv['worst_ms']:.0f} ms "
                     f"over {rv['trials']} trials")
    sc = report.get("scale")
    if sc:
        lines.append(f"{'introspection, ' + format(sc['sizes']['small'], ',') + ' stored':<34} "
                     f"{sc['small']['rps']:>9.0f} {'':>8} {sc['small']['p99_ms']:>8.2f}")
        lines.append(f"{'introspection, ' + format(sc['sizes']['large'], ',') + ' stored':<34} "
                     f"{sc['large']['rps']:>9.0f} {'':>8} {sc['large']['p99_ms']:>8.2f}  "
                     f"ratio {sc['ratio']:.2f}")
        c = sc.get("cleanup") or {}
        if c:
            lines.append(f"{'introspection p99 during cleanup':<34} {c['rate']:>9.0f} {c['p50_during_ms']:>8.2f} "
                         f"{c['p99_during_ms']:>8.2f} {'':>7} {'':>8} {c['errors']:>7}  before p99 "
                         f"{c['p99_before_ms']:.2f} ms; {c.get('deleted') or 0:,} deleted in {c['job_seconds']:.0f} s")
    for kind, rows in (report.get("servers") or {}).items():
        for name, row in rows.items():
            lines.append(f"{kind + ': ' + name:<34} {row['rps']:>9.0f} {'':>8} {row['p99_ms']:>8.2f} "
                         f"{fmt(row['vs_bare'], '7.2f'):>7} {'':>8} {row['errors']:>7}  bare {row['bare_rps']:.0f}")
    for failure in report.get("failures", []):
        lines.append(f"FAILED PHASE {failure}")
    lines.append("")
    for g in report.get("goals", []):
        mark = {True: "met ", False: "MISS", None: "n/a "}[g["met"]]
        value = "-" if g["value"] is None else f"{g['value']:.2f}{g['unit']}"
        op = ">=" if g["higher_is_better"] else "<="
        lines.append(f"  [{mark}] {g['goal']}: {value} ({op} {g['target']}{g['unit']})")
    return "\n".join(lines)


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
    bench = Bench(args)
    try:
        report = bench.run()
    finally:
        bench.close()
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
