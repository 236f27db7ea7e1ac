"""Revocation fan-out: how long after a revocation's response any worker still answers ``active``."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

from bench import data, servers
from bench.env import HOST, progress
from bench.runner import Runner, basic, wait_until_idle


def run(runner: Runner, srv: servers.Server, seeded: dict[str, Any], *, trials: int) -> dict[str, Any]:
    """Issue a token, get it cached in every worker, revoke it, then watch: the time from the
    revocation's response to the sending of the last request any worker answers ``active: true``."""
    rs_auth = basic(seeded["rs_client_id"], seeded["rs_secret"])
    client_id = seeded["machine_client_ids"][0]
    secret = data.credential(runner.seed, "cs", data.CLIENT_SECRET, seeded["machine_secret_base"])
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
