"""Every benchmark in one run, one table: each figure beside its baseline measured in the same run.

    .venv/bin/python -m bench.run [--quick | --smoke] [--only ingest,read,events,statistics,relay] [--json PATH]

Starts its own PostgreSQL and NATS (embedded, in a temporary folder, unless TAKEDOWN_DATABASE_URL /
TAKEDOWN_NATS_URL are set), gives each part a fresh database, starts the servers each part needs
on loopback ports, and stops and removes all of it on the way out, Ctrl-C included. A missed
target is a finding, not a failure: the exit status is 0 whenever the measurements ran.
--quick does less of everything (about a minute); --smoke is the test suite's tiny run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from bench import events, ingest_read, stats_report
from bench.harness import FULL, QUICK, SMOKE, Row, Sizes, Stack, print_table, services, stack

PARTS = ("ingest", "read", "events", "statistics", "relay")
TIME_LIMIT = {"full": 1200.0, "quick": 120.0, "smoke": 90.0}


async def run(sizes: Sizes, only: set[str]) -> list[Row]:
    """The selected parts, in the order of PARTS, each on a fresh database of one stack."""
    steps: list[tuple[set[str], Callable[[Stack, Sizes], Awaitable[list[Row]]], Callable[[list[Row]], list[Row]]]] = [
        ({"ingest", "read"}, ingest_read.run, lambda rows: [r for r in rows if r.path.split()[0] in only]),
        ({"events"}, events.run_latency, lambda rows: rows),
        ({"statistics"}, stats_report.run, lambda rows: rows),
        ({"relay"}, events.run_relay, lambda rows: rows),
    ]
    rows: list[Row] = []
    async with services() as shared:
        for names, part, keep in steps:
            if not names & only:
                continue
            started = time.monotonic()
            async with stack(shared) as s:
                rows += keep(await part(s, sizes))
            print(f"[bench] {'/'.join(sorted(names & only))} done in {time.monotonic() - started:.0f} s", file=sys.stderr,
                  flush=True)
    return rows


async def supervised(sizes: Sizes, only: set[str]) -> tuple[str, list[Row]]:
    """`run` in a task that Ctrl-C (SIGINT, SIGTERM) or the time limit cancels, again every half second
    until it has unwound: a cancellation that one await happened to swallow cannot keep it going."""
    loop = asyncio.get_running_loop()
    inner = asyncio.create_task(run(sizes, only))
    reason = ""

    def interrupt() -> None:
        nonlocal reason
        reason = reason or "interrupted"
        inner.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    deadline = loop.time() + TIME_LIMIT[sizes.name]
    try:
        while not inner.done():
            await asyncio.wait({inner}, timeout=0.5)
            if not inner.done() and (reason or loop.time() > deadline):
                reason = reason or f"over the time limit of {TIME_LIMIT[sizes.name]:.0f} s"
                inner.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if inner.cancelled():
        return reason or "cancelled", []
    return "", inner.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const=QUICK, dest="sizes", help="less of everything (about a minute)")
    size.add_argument("--smoke", action="store_const", const=SMOKE, dest="sizes", help="tiny counts (the test suite's run)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes: Sizes = args.sizes or FULL
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    if not only or only - set(PARTS):
        parser.error(f"--only takes parts of {','.join(PARTS)}")

    print(f"[bench] {sizes.name} run of {', '.join(p for p in PARTS if p in only)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    stopped, rows = asyncio.run(supervised(sizes, only))
    if stopped:
        print(f"[bench] {stopped}; everything it started was stopped", file=sys.stderr)
        return 130 if stopped == "interrupted" else 1
    print(f"\nBenchmarks ({sizes.name}, {time.monotonic() - started:.0f} s; ratio = the platform's figure as a share "
          "of the baseline's, for times baseline/measured)\n")
    print_table(rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump([asdict(r) for r in rows], out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
