"""(d) A second beat started by mistake does not run a schedule twice: it stands by while the first
holds the beat lock (authserver.beat), and takes over when the first one is gone."""

from __future__ import annotations

import time

from tests.cluster.harness import set_schedule, wait_until

PROBE = "cluster-probe"
EVERY = 2
WINDOW = 10.0


def _sent(log: str) -> int:
    return log.count(f"Sending due task {PROBE} ")


def test_a_second_beat_stands_by_and_the_schedule_runs_once(cluster):
    first = cluster.procs["beat1"]
    set_schedule(cluster, name=PROBE, task="keys.usage_roll_up", seconds=EVERY)
    wait_until(lambda: _sent(first.log()) >= 1, "the first beat to send the probe", procs=[first])

    second = cluster.start_beat("beat2")
    wait_until(lambda: "another beat holds the beat lock" in second.log(), "the second beat to stand by",
               procs=[second])
    before = (_sent(first.log()), _sent(second.log()))
    time.sleep(WINDOW)
    sent_first, sent_second = _sent(first.log()) - before[0], _sent(second.log()) - before[1]
    assert sent_second == 0, second.log()[-2000:]
    # Once per interval, from one beat: never twice as many as the schedule asks for.
    assert WINDOW / EVERY - 2 <= sent_first <= WINDOW / EVERY + 1, (sent_first, sent_second)
    worker_runs = sum(cluster.procs[f"worker{n}"].log().count("Task keys.usage_roll_up[") for n in (1, 2))
    assert worker_runs > 0

    # The first beat goes away: the one standing by takes over the schedule.
    first.stop()
    wait_until(lambda: "took the beat lock" in second.log(), "the second beat to take the lock", timeout=20,
               procs=[second])
    wait_until(lambda: _sent(second.log()) >= 2, "the second beat to send the probe", timeout=20, procs=[second])
    set_schedule(cluster, name=PROBE, task="keys.usage_roll_up", seconds=3600)
