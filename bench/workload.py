# ruff: noqa: S311 - reproducible pseudo-random data
"""What the bench sends: the mixes of valid, expired, revoked and garbage credentials, and the
request files (one ``Authorization<TAB>body`` line per request) each scenario replays."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import data, dot
from bench.runner import Runner, basic


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


def request_sets(runner: Runner, seeded: dict[str, Any]) -> dict[str, Path]:
    """The request files of the main-database scenarios (their lines are kept in ``runner.lines``)."""
    s, seed, rng = runner.sizes, runner.seed, runner.rng
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
    redirect = quote(data.REDIRECT_URI, safe="")
    sets["authorization_code"] = [
        (web_auth, f"grant_type=authorization_code&code={data.credential(seed, 'ac', data.CODE, i)}"
                   f"&redirect_uri={redirect}&code_verifier={data.CODE_VERIFIER}") for i in range(s.codes)]
    sets["refresh_token"] = [
        (web_auth, f"grant_type=refresh_token&refresh_token={data.credential(seed, 'rt', data.REFRESH, i)}")
        for i in range(s.refresh)]
    runner.lines = sets
    return {name: runner.bodies(name, lines) for name, lines in sets.items()}


def dot_sets(runner: Runner, secrets: dict[str, str]) -> dict[str, Path]:
    """The request files replayed against vanilla django-oauth-toolkit."""
    rng, s = runner.rng, runner.sizes

    def dot_targets(count: int) -> list[str]:
        out = []
        for _ in range(count):
            r = rng.random()
            if r < 0.9:
                out.append(dot.dot_token(runner.seed, rng.randrange(s.dot_tokens)))
            else:
                out.append(data.garbage(runner.seed, rng.randrange(10**6)))
        return out

    bearer = "Bearer " + secrets["introspector"]
    rs = basic("dot-rs", secrets["rs_secret"])
    svc = basic("dot-svc", secrets["svc_secret"])
    return {
        "dot_introspect_bearer": runner.bodies("dot_bearer", [(bearer, "token=" + t) for t in dot_targets(20_000)]),
        "dot_introspect_basic": runner.bodies("dot_basic", [(rs, "token=" + t) for t in dot_targets(2_000)]),
        "dot_client_credentials": runner.bodies("dot_cc", [(svc, "grant_type=client_credentials")] * 100),
    }

