"""Notice transitions at concurrency 16, through the service commands in one process.

    .venv/bin/python -m bench.transitions [--notices N]

Reports N notices in batches, then acknowledges each and then marks each removed, 16 at a time,
and prints each step's rate and p99. This is the write a company's tools repeat most after a
report, and where the commit-order lock (api/store/events.py) shows: every transition's event
and audit entry are numbered under it. Not a row of `make bench` (the issue sets no target for
it) and without a baseline: compare two revisions by running it against each (see
bench/inprocess_read.py for how). Starts its own PostgreSQL and NATS unless TAKEDOWN_DATABASE_URL
is set (as the other parts do), in a fresh database it drops again.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

from api.domain.notices import ContentCategory, Transition
from api.domain.organizations import Role, Viewer
from api.protect import load_url_protector
from api.services.notices import NoticeCommands, ReportInput
from api.store.pool import create_pool
from bench.harness import Load, load, stack

BATCH = 1000


async def measure(notices: int) -> dict[Transition, Load]:
    async with stack() as s:
        pool = await create_pool(s.settings)
        try:
            commands = NoticeCommands(pool, load_url_protector(s.settings))
            hotline = Viewer("bench", s.hotline.id, s.hotline.kind, frozenset({Role.ANALYST}))
            company = Viewer("bench", s.company.id, s.company.kind, frozenset({Role.ANALYST}))
            ids: list[UUID] = []
            while len(ids) < notices:
                size = min(BATCH, notices - len(ids))
                batch = [ReportInput(s.company.id, f"https://files.example-host.test/{len(ids) + n}.jpg",
                                     ContentCategory.BASELINE_CSAM) for n in range(size)]
                ids += [r.notice.id for r in await commands.report(hotline, batch)]
            measured: dict[Transition, Load] = {}
            for transition in (Transition.ACKNOWLEDGE, Transition.REMOVE):
                measured[transition] = await load(_each(commands, company, ids, transition), concurrency=16,
                                                  requests=len(ids), seconds=120)
            return measured
        finally:
            await pool.close()


def _each(commands: NoticeCommands, viewer: Viewer, ids: list[UUID], transition: Transition) -> Callable[[], Awaitable[None]]:
    """One call per notice, in order: `load` calls it once per request."""
    remaining = iter(ids)

    async def step() -> None:
        await commands.act(viewer, next(remaining), transition)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notices", type=int, default=3000)
    args = parser.parse_args()
    for transition, result in asyncio.run(asyncio.wait_for(measure(args.notices), timeout=600)).items():
        print(f"{transition.value}: {result.requests:,} at {result.rate:,.0f}/s, p99 {result.p(0.99):.1f} ms "
              f"(concurrency 16, in process)")


if __name__ == "__main__":
    main()
