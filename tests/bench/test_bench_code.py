"""The bench's own pieces (no timing here: the bench runs in CI as its own step)."""

from __future__ import annotations

from authserver import credentials
from bench import __main__ as bench_main
from bench import data, workload


def test_derived_credentials_are_well_formed_and_distinct():
    seen = set()
    for kind, ns in (("at", data.LIVE), ("ak", data.KEY), ("cs", data.CLIENT_SECRET), ("ac", data.CODE),
                     ("rt", data.REFRESH)):
        for i in range(50):
            value = data.credential("s", kind, ns, i)
            assert credentials.is_well_formed(value, kind), value
            seen.add(value)
    assert len(seen) == 250
    assert data.credential("s", "at", data.LIVE, 1) == data.credential("s", "at", data.LIVE, 1)
    assert not any(credentials.is_well_formed(data.garbage("s", i)) for i in range(30))


def test_mixes_have_the_documented_shape():
    import random

    sizes = data.SMALL
    hot = workload.token_mix("s", sizes, hot=True, count=2000, rng=random.Random(1))
    live = {data.credential("s", "at", data.LIVE, i) for i in range(sizes.hot_set)}
    share = sum(t in live for t in hot) / len(hot)
    assert 0.8 < share < 0.9
    keys = workload.key_mix("s", sizes, hot=False, count=1000, rng=random.Random(2))
    assert sum(not credentials.is_well_formed(k) for k in keys) > 50


def test_table_and_goals_render():
    report = {
        "throughput": {
            "introspect_hot": {"rps": 900.0, "p50_ms": 1.0, "p99_ms": 3.0, "errors": 0, "vs_bare": 0.9,
                               "bare_rps": 1000.0},
            "dot_introspect_bearer": {"rps": 50.0, "p50_ms": 10.0, "p99_ms": 30.0, "errors": 0, "vs_bare": None},
        },
        "open_loop": {"rate": 1000, "p50_ms": 0.8, "p99_ms": 4.0, "p999_ms": 9.0, "errors": 0},
        "revocation": {"worst_ms": 250.0, "trials": 3},
    }
    report["goals"] = bench_main.goals(report)
    text = bench_main.table(report)
    assert "introspect_hot" in text and "[met ] introspection hot / bare view" in text
    assert "[met ] introspection / vanilla DOT (Bearer): 18.00" in text
    assert "[n/a ]" in text


def test_token_issuance_goals_of_issue_17_render():
    report = {
        "throughput": {
            "introspect_hot": {"rps": 5200.0, "p50_ms": 1.0, "p99_ms": 3.0, "errors": 0, "vs_bare": 0.85,
                               "bare_rps": 6100.0},
            "client_credentials": {"rps": 900.0, "p50_ms": 8.0, "p99_ms": 20.0, "errors": 0, "vs_bare": 0.15},
            "authorization_code": {"rps": 510.0, "p50_ms": 9.0, "p99_ms": 30.0, "errors": 0, "vs_bare": 0.08},
        },
        "open_loop": {"rate": 1000, "p50_ms": 0.8, "p99_ms": 4.0, "p999_ms": 9.0, "errors": 0,
                      "client_credentials": {"rate": 200, "p50_ms": 3.0, "p99_ms": 25.0, "p999_ms": 40.0,
                                             "errors": 0}},
    }
    report["goals"] = bench_main.goals(report)
    text = bench_main.table(report)
    assert "[met ] introspection hot, absolute: 5200.00/s (>= 5100/s)" in text
    assert "[MISS] client_credentials, absolute: 900.00/s (>= 1000/s)" in text
    assert "[MISS] client_credentials / bare view: 0.15 (>= 0.2)" in text
    assert "[met ] authorization_code exchange, absolute: 510.00/s (>= 500/s)" in text
    assert "[n/a ] refresh_token, absolute: - (>= 500/s)" in text
    assert "[MISS] open loop 200 tokens/s p99: 25.00ms (<= 20.0ms)" in text
    assert "open loop 200/s client_credentials" in text


def test_small_configuration_parses():
    args = bench_main.parse(["--small"])
    assert args.rounds == 1 and args.seconds == 1.0 and args.compare == []
    assert args.token_rate == 200.0
