"""The benchmark's CPU accounting (bench/harness.py CpuMeter): per process, never negative."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import CpuMeter

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
