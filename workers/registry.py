"""The workers, by name, and the composition root that runs them (`takedown worker NAME ...|all`).

Each worker is an object with `name` and `async run(stop)`; `run` returns once
`stop` is set, having finished (or handed back) the message in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import httpx

from api.domain.notices import ContentCategory
from api.protect import UrlProtector, load_url_protector
from api.services.notices import NoticeCommands, utcnow
from api.settings import Settings
from api.store.pool import create_pool

from .deadlines import DeadlinesWorker
from .relay import Relay
from .victim_alerts import VictimAlertsWorker
from .webhooks import WebhooksWorker

log = logging.getLogger("takedown.workers")


class Worker(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class WorkerContext:
    settings: Settings
    pool: asyncpg.Pool
    protector: UrlProtector
    http: httpx.AsyncClient
    clock: Callable[[], datetime] = utcnow

    @property
    def notices(self) -> NoticeCommands:
        deadlines = {
            ContentCategory(name): timedelta(hours=hours)
            for name, hours in self.settings.deadline_hours
            if name in ContentCategory.__members__
        }
        return NoticeCommands(self.pool, self.protector, deadlines=deadlines, clock=self.clock)


WORKERS: dict[str, Callable[[WorkerContext], Worker]] = {
    "relay": lambda ctx: Relay(ctx.settings),
    "webhooks": lambda ctx: WebhooksWorker(ctx.settings, ctx.pool, ctx.protector, ctx.http),
    "deadlines": lambda ctx: DeadlinesWorker(ctx.settings, ctx.pool, ctx.notices, clock=ctx.clock),
    "victim-alerts": lambda ctx: VictimAlertsWorker(ctx.settings, ctx.pool),
}


def resolve(names: Sequence[str]) -> list[str]:
    if not names or list(names) == ["all"]:
        return list(WORKERS)
    unknown = [n for n in names if n not in WORKERS]
    if unknown:
        raise ValueError(f"unknown worker {', '.join(unknown)}; choose from {', '.join(WORKERS)} or all")
    return list(dict.fromkeys(names))


async def run_workers(settings: Settings, names: Sequence[str], stop: asyncio.Event) -> None:
    """Run the named workers until `stop` is set; a crashed worker is restarted after a pause."""
    chosen = resolve(names)
    pool = await create_pool(settings)
    http = httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout_seconds)
    context = WorkerContext(settings, pool, load_url_protector(settings), http)
    try:
        await asyncio.gather(*(_supervise(WORKERS[name], context, stop) for name in chosen))
    finally:
        await http.aclose()
        await pool.close()


async def _supervise(factory: Callable[[WorkerContext], Worker], context: WorkerContext, stop: asyncio.Event) -> None:
    while not stop.is_set():
        worker = factory(context)
        try:
            await worker.run(stop)
        except Exception:
            log.exception("worker crashed; restarting", extra={"worker": worker.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


def main(settings: Settings, names: Sequence[str]) -> int:
    """The process entry point: SIGTERM and SIGINT stop the workers cleanly."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("workers starting", extra={"workers": ",".join(resolve(names))})
        await run_workers(settings, names, stop)

    asyncio.run(run())
    return 0
