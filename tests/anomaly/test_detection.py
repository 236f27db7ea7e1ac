"""Traffic-generator runs of the pure detector: convergence, spike detection, false positives.

Results are printed (run with ``-s`` to see them) for the feature note.
"""

from __future__ import annotations

import statistics

import pytest

from authserver.anomaly.detection import Config, Detector, key_network, quantile, stats
from tests.anomaly.traffic import spike, steady

CFG = Config()


def report(text: str) -> None:
    print(f"\n[anomaly traffic generator] {text}")


def test_steady_traffic_converges_then_a_spike_is_detected_in_its_first_minute():
    detector = Detector(CFG)
    warm = detector.run(steady(120, seed=7))
    assert not any(flag for _, flag in warm), "no anomaly on steady traffic"
    limits = [limit for limit, _ in warm]
    assert limits[0] == CFG.default_limit, "a new credential starts at the conservative default"
    settled = limits[CFG.warmup + 30:]
    # Converged: about limit_factor x the high quantile of ~60/min (p99 ≈ 80-100) and stable.
    assert all(240 <= limit <= 480 for limit in settled), settled
    assert max(settled) - min(settled) <= 0.25 * statistics.mean(settled)

    results = detector.run(spike(5, factor=10))
    flagged = [i for i, (_, flag) in enumerate(results) if flag]
    assert flagged and flagged[0] == 0
    minutes_to_detection = flagged[0] + 1
    assert all(flag for _, flag in results), "every spike minute is flagged, the spike does not become the baseline"
    assert results[-1][0] <= max(limits[-5:]), "the spike does not raise the limit"
    report(f"10x spike on ~60/min: detected after {minutes_to_detection} minute of spike traffic "
           f"(job runs every minute: <= 2 min wall clock); effective limit converged to "
           f"{min(settled)}-{max(settled)}/min")


@pytest.mark.parametrize("factor", [4, 5, 10, 20])
def test_spike_detection_latency_over_many_seeds(factor):
    latencies: list[int | None] = []
    for seed in range(20):
        detector = Detector(CFG)
        detector.run(steady(120, seed=100 + seed))
        results = detector.run(spike(10, factor=factor, seed=200 + seed))
        latencies.append(next((i + 1 for i, (_, flag) in enumerate(results) if flag), None))
    detected = [m for m in latencies if m is not None]
    report(f"{factor}x spike on ~60/min, 20 seeds: detected {len(detected)}/20"
           + (f", minutes of spike traffic until detection: max {max(detected)}, mean {statistics.mean(detected):.2f}"
              if detected else ""))
    if factor >= 10:  # "far above its baseline": volume_factor (3) x the 99th percentile
        assert latencies == [1] * 20


@pytest.mark.parametrize(("rate", "jitter"), [(60, 0.15), (60, 0.25), (5, 0.2), (2000, 0.1)])
def test_false_positive_rate_on_a_day_of_steady_traffic(rate, jitter):
    minutes = 1440
    flagged = total = 0
    for seed in range(5):
        detector = Detector(CFG)
        results = detector.run(steady(minutes, rate=rate, jitter=jitter, seed=seed))
        flagged += sum(flag for _, flag in results)
        total += minutes
    fp_rate = flagged / total
    report(f"steady {rate}/min, jitter {jitter:.0%}, daily swing ±20%: {flagged} false positives in "
           f"{total} minutes (5 x 24 h), rate {fp_rate:.5f}")
    assert fp_rate <= 0.0005


def test_limits_are_clamped_between_floor_and_ceiling():
    tiny = Detector(CFG)
    tiny.run([1] * 60)
    assert tiny.step(1)[0] == CFG.floor
    huge = Detector(CFG)
    huge.run([40_000] * 60)
    assert huge.step(40_000)[0] == CFG.ceiling


def test_statistics():
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    st = stats([10] * 50 + [20] * 50, CFG)
    assert st.mean == 15 and st.samples == 100 and st.high == 20


@pytest.mark.parametrize(
    ("ip", "network"),
    [("192.0.2.77", "192.0.2.0/24"), ("::ffff:192.0.2.77", "192.0.2.0/24"),
     ("2001:db8:1:2::1", "2001:db8:1::/48"), ("garbage", None), ("", None)],
)
def test_key_networks(ip, network):
    assert key_network(ip) == network
