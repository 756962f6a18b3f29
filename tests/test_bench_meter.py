"""The benchmark's CPU accounting (bench/harness.py CpuMeter): per process, never negative."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from api.settings import Settings
from bench.harness import CpuMeter, alternating

BURN = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\nsys.stdin.read()"


def burner(seconds: float) -> subprocess.Popen[bytes]:
    """A process that uses `seconds` of CPU, then waits until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", BURN.format(s=seconds)], stdin=subprocess.PIPE)


async def test_cpu_used_before_the_start_is_not_counted_and_an_exited_process_is_left_out() -> None:
    early, late = burner(0.3), burner(0.0)
    try:
        time.sleep(1.0)  # `early` has spent its 0.3 s before the meter starts
        meter = CpuMeter({"early": [early.pid], "late": [late.pid]})
        await meter.start()
        assert late.stdin is not None and early.stdin is not None
        early.stdin.close()
        early.wait()  # gone before the reading: left out, not subtracted
        costs = await meter.per_request(1)
    finally:
        for process in (early, late):
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            process.wait()
    assert costs["early"] is None
    assert costs["late"] is not None and 0 <= costs["late"] < 100


async def test_two_sides_are_measured_in_alternating_slices_each_with_its_own_time_and_cpu(settings: Settings) -> None:
    """bench.harness.alternating: A B, B A, A B ... so a drift in the machine's speed falls on both sides."""
    order: list[str] = []

    def side(name: str, pause: float, burn: float) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            order.append(name)
            started = time.process_time()
            while time.process_time() - started < burn:
                pass
            await asyncio.sleep(pause)
        return call

    # a: quick but busy (10 ms of CPU a request); b: slow but idle (50 ms asleep)
    measured = await alternating({"a": (side("a", 0.0, 0.01), {"me": [os.getpid()]}),
                                  "b": (side("b", 0.05, 0.0), {"me": [os.getpid()]})},
                                 concurrency=1, requests=23, database=settings.database_url)
    runs = [(name, len(list(group))) for name, group in itertools.groupby(order)]
    # slices of 5, 5, 5, 4, 4 requests, each side's turn first in every other slice
    assert runs == [("a", 5), ("b", 10), ("a", 10), ("b", 9), ("a", 8), ("b", 4)], runs
    (a, a_cpu), (b, b_cpu) = measured["a"], measured["b"]
    assert a.requests == b.requests == 23 and len(a.latencies) == len(b.latencies) == 23
    assert a.rate > 1.5 * b.rate, (a.rate, b.rate)  # each side's rate from its own slices' time (shared time: equal)
    assert set(a_cpu) == set(b_cpu) == {"me", "PostgreSQL"}
    assert a_cpu["me"] is not None and b_cpu["me"] is not None
    assert a_cpu["me"] >= 7 and b_cpu["me"] < a_cpu["me"] / 2, (a_cpu, b_cpu)  # each side's own slices' CPU
