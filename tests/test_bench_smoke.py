"""The benchmark command still runs end to end (tiny counts): every figure is produced, with its baseline.

Not a performance test: targets are not asserted, only that each measurement happened and is a
positive number. The run is a subprocess with its own NATS (so its 2,000-event backlog never
reaches the session's stream) on the session's PostgreSQL, in fresh databases it drops again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Services

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = [
    "ingest reportNotices x50",
    "ingest reportNotice, c16",
    "read notices(first: 50), c1",
    "read notices(first: 50), c32",
    "events commit->subscriber, 1 sub ",
    "events commit->subscriber, 3 subs ",
    "events commit->subscriber, 5 subs ",
    "events memory per idle subscription",
    "statistics(groupBy: PROVIDER), 1 year of 2,000",
    "relay backlog of 2,000 -> JetStream",
]
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in NUMBER.findall(text)]


def _run(services: Services, module: str, *args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    """A bench module as the README runs it, on the session's PostgreSQL; it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
    env["TAKEDOWN_DATABASE_URL"] = services.admin_dsn
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_benchmark_command_produces_every_figure_beside_its_baseline(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    done = _run(services, "bench.run", "--smoke", "--json", str(out))
    rows = json.loads(out.read_text())
    assert len(rows) == len(EXPECTED), [r["path"] for r in rows]
    for prefix, row in zip(EXPECTED, rows, strict=True):
        assert row["path"].startswith(prefix), (prefix, row["path"])
        measured, baseline = _numbers(row["measured"]), _numbers(row["baseline"])
        assert measured and baseline, row
        if "memory" in row["path"]:
            continue  # an RSS delta over four subscriptions is a few pages: present, not necessarily positive
        assert measured[0] > 0 and baseline[0] > 0, row
        assert row["ratio"] is not None and row["ratio"] > 0, row
        if row["target"]:
            assert row["met"] in (True, False), row
    events = [r for r in rows if r["path"].startswith("events commit")]
    assert all("missing" not in r["measured"] and "errors" not in r["measured"] for r in events), events
    assert "Benchmarks (smoke" in done.stdout and "relay backlog" in done.stdout  # the one table, printed


@pytest.mark.parametrize(("option", "unit", "at_a_time"), [((), "page", 1), (("--report",), "report", 1),
                                                          (("--concurrency", "4"), "page", 4)])
def test_the_in_process_measurement_runs_and_reports_cpu_and_collection_time(
    services: Services, option: tuple[str, ...], unit: str, at_a_time: int
) -> None:
    done = _run(services, "bench.inprocess_read", *option, "--requests", "20")
    lines = [line for line in done.stdout.splitlines() if "ms CPU" in line]
    assert len(lines) == 3, done.stdout
    for line in lines:
        cpu, kernel, wall, requests, in_flight, *_ = _numbers(line)
        assert cpu > 0 and 0 <= kernel <= cpu and wall > 0 and requests == 20 and in_flight == at_a_time, line
        assert f"wall per {unit} (20 {unit}s" in line and "garbage collection" in line and "collections" in line, line


def test_the_in_process_measurement_refuses_a_tree_it_would_not_measure(tmp_path: Path) -> None:
    """--root names a tree without the api package: measuring this one instead would be a silent lie."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
    done = subprocess.run([sys.executable, "-m", "bench.inprocess_read", "--root", str(tmp_path), "--requests", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"not from {tmp_path.resolve()}" in done.stderr, done.stderr[-2000:]


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
                    reason="--instructions needs valgrind, which this machine does not have")
def test_the_in_process_measurement_counts_instructions_under_callgrind(services: Services) -> None:
    done = _run(services, "bench.inprocess_read", "--instructions", "--requests", "2", timeout=300)
    millions, pages = _numbers(done.stdout)[:2]
    assert pages == 2 and 1 < millions < 1000, done.stdout  # a page is millions of instructions, not none or all of the set-up
    assert "instructions per page (2 pages" in done.stdout, done.stdout


def test_the_transitions_benchmark_still_runs(services: Services) -> None:
    done = _run(services, "bench.transitions", "--notices", "40")
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["acknowledged", "removed"], done.stdout
    assert all(_numbers(line)[0] == 40 and _numbers(line)[1] > 0 for line in lines), done.stdout
