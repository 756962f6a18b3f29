"""The API's own CPU per `notices(first: 50)` page, or with --report per single `reportNotice`,
measured in one process: the ASGI app called directly (no HTTP server, no load generator sharing
the cores), so the figure moves little between runs and two trees can be compared in one sitting.

    .venv/bin/python -m bench.inprocess_read [--report] [--requests N] [--concurrency N] [--profile [SORT]]
                                             [--instructions [--keep FILE]]

--report measures the ingest's single mutation instead of the page: each request reports a new
URL (so none is answered as a duplicate), one after the other, PostgreSQL's work not counted.

--concurrency N keeps N requests in flight at a time, as a loaded server has them: the objects of
requests in flight are what the garbage collector walks, so its collections and pauses per request
show there (at 32 pages, the served API's p99 was set by them until requests stopped leaving
reference cycles).

To compare with an earlier revision, check it out beside this one and run this module against it
(the module only needs the tree's `api` package on the path, which its directory provides):

    git worktree add /tmp/before <rev>
    (cd /tmp/before && /path/to/this/.venv/bin/python /path/to/this/bench/inprocess_read.py --root /tmp/before)
    git worktree remove /tmp/before

Each line also gives the time spent in the garbage collector (measured by its own callbacks),
which moves less than the CPU total when other work shares the machine.

--profile prints cProfile's 60 most expensive functions, by own time or by SORT (cumulative, ...);
cProfile inflates function-call-heavy code: use it to find, py-spy or --instructions to weigh.

--instructions counts the machine instructions per page instead (valgrind's callgrind, with
instrumentation switched on around the measured pages, so the switching itself adds a small
constant): the same for the same code and inputs whatever else the machine is doing, so a change
of a percent or two shows, where CPU time on a shared machine moves by 20-30% between runs. Runs
repeat within ~0.5%; a figure below that needs repeated runs. It needs valgrind (and its
callgrind_control) on the PATH; by default it measures 30 pages, which takes under a minute.
--keep FILE keeps callgrind's output: `callgrind_annotate --inclusive=yes FILE` shows where the
instructions go by C function (asyncpg's decoders, orjson, the datetime module, the interpreter).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def call(app: Any, body: bytes, headers: dict[str, str]) -> bytes:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


class GarbageCollectionTime:
    """Time spent in the garbage collector (its own callbacks): steadier than the CPU total on a
    shared machine, so a change to collection settings can be judged in one run."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds = self.longest = 0.0
        self.runs = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.seconds += took
            self.longest = max(self.longest, took)
            self.runs += 1


async def in_flight(request: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> None:
    """`requests` requests, `concurrency` of them at a time (each caller starts its next when one ends)."""
    left = requests

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await asyncio.create_task(request())  # a task per request, as uvicorn runs each

    await asyncio.gather(*(caller() for _ in range(concurrency)))


async def main(requests: int, profile: str | None, instrument: bool, report: bool, concurrency: int = 1) -> None:
    import asyncpg

    from bench.harness import stack
    from bench.ingest_read import PAGE, REPORT_MANY, REPORT_ONE, inputs

    unit = "report" if report else "page"
    async with stack() as s:
        os.environ.update(s.env)
        from api import cli
        from api.app import create_app

        app = create_app(cli._settings())
        # As `takedown serve` does. Earlier trees (see --root) call it _freeze_long_lived_objects, and
        # trees older than that run with Python's defaults, as they were served.
        tune = getattr(cli, "_tune_garbage_collection", None) or getattr(cli, "_freeze_long_lived_objects", None)
        if tune is not None:
            tune()
        headers = {"Authorization": f"Bearer {s.hotline_token}"}
        async with app.router.lifespan_context(app):
            for _ in range(3):
                answer = await call(app, json.dumps({"query": REPORT_MANY, "variables": {"i": inputs(s, 1000)}}).encode(), headers)
                assert b'"errors"' not in answer, answer[:300]
            conn = await asyncpg.connect(s.dsn)
            try:
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
            if report:
                # Bodies made beforehand, so that making them is not measured; 200 warm-up + 3 rounds.
                bodies = iter([json.dumps({"query": REPORT_ONE, "variables": {"i": one}}).encode()
                               for one in inputs(s, 201 + 3 * requests + (300 if profile else 0))])
                answer = await call(app, next(bodies), headers)
                assert b'"errors"' not in answer and b'"deduplicated":false' in answer, answer[:300]

                def request() -> Any:
                    return call(app, next(bodies), headers)
            else:
                body = json.dumps({"query": PAGE, "variables": {"p": [s.provider_id]}}).encode()
                answer = await call(app, body, headers)
                assert b'"errors"' not in answer and answer.count(b'"reference"') == 50, answer[:300]

                def request() -> Any:
                    return call(app, body, headers)
            for _ in range(200):
                await request()
            if instrument:  # run by --instructions, under callgrind: count these requests only
                gc.collect()  # each run starts from the same collector state
                callgrind_control("on")
                for _ in range(requests):
                    await request()
                callgrind_control("off")
                return
            collecting = GarbageCollectionTime()
            gc.callbacks.append(collecting)
            for _ in range(3):
                wall, cpu, times = time.perf_counter(), time.process_time(), os.times()
                collecting.reset()
                await in_flight(request, requests, concurrency)
                after = os.times()
                print(f"{(time.process_time() - cpu) / requests * 1e3:.3f} ms CPU "
                      f"(of which in the kernel {(after.system - times.system) / requests * 1e3:.3f} ms), "
                      f"{(time.perf_counter() - wall) / requests * 1e3:.3f} ms wall per {unit} ({requests} {unit}s, "
                      f"{concurrency} at a time, "
                      f"PostgreSQL's CPU not included); garbage collection {collecting.seconds / requests * 1e3:.3f} ms "
                      f"per {unit}, {collecting.runs} collections, the longest {collecting.longest * 1e3:.1f} ms")
            gc.callbacks.remove(collecting)
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(300):
                    await request()
                profiler.disable()
                pstats.Stats(profiler).sort_stats(profile).print_stats(60)


def callgrind_control(instrumentation: str) -> None:
    subprocess.run(["callgrind_control", "-i", instrumentation, str(os.getpid())], check=True, capture_output=True)


def count_instructions(requests: int, root: str | None, keep: str | None, report: bool) -> None:
    """This module again, under callgrind, with instrumentation on for the measured requests only."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                   sys.executable, os.path.abspath(__file__), "--requests", str(requests), "--under-callgrind"]
        command += (["--root", root] if root else []) + (["--report"] if report else [])
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            sys.exit(f"the measurement under callgrind failed:\n{done.stderr[-3000:]}")
        with open(out) as counts:
            total = next(int(line.split()[1]) for line in counts if line.startswith("totals:"))
        if keep:
            shutil.copy(out, keep)
    unit = "report" if report else "page"
    print(f"{total / requests / 1e6:.2f} million instructions per {unit} ({requests} {unit}s, callgrind)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="measure single reportNotice mutations instead of pages")
    parser.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="N requests in flight at a time (default 1; not with --instructions or --profile)")
    parser.add_argument("--requests", type=int, help="requests measured (default 1000; 30 with --instructions)")
    parser.add_argument("--profile", nargs="?", const="tottime", metavar="SORT",
                        help="print cProfile's top functions, sorted by SORT (tottime; or cumulative, ...)")
    parser.add_argument("--keep", metavar="FILE", help="with --instructions: keep callgrind's output (for callgrind_annotate)")
    parser.add_argument("--root", help="the tree whose api package to measure (default: this one)")
    parser.add_argument("--instructions", action="store_true", help="count instructions per request under callgrind")
    parser.add_argument("--under-callgrind", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 30 if args.instructions else 1000
    if args.concurrency < 1 or (args.concurrency > 1 and (args.instructions or args.profile)):
        parser.error("--concurrency must be at least 1, and 1 with --instructions or --profile")
    if args.instructions:
        count_instructions(args.requests, args.root, args.keep, args.report)
        sys.exit(0)
    tree = os.path.realpath(args.root or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, tree)
    import api

    if not os.path.realpath(api.__file__).startswith(tree + os.sep):
        # Imported here, before the harness puts this tree first on the path, so that the tree measured
        # is the one named; if something imported another tree's api before, say so rather than measure it.
        sys.exit(f"the api package came from {os.path.dirname(api.__file__)}, not from {tree}: "
                 "was it imported before this check?")
    asyncio.run(asyncio.wait_for(main(args.requests, args.profile, args.under_callgrind, args.report, args.concurrency), timeout=1500))
