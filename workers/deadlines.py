"""The deadlines worker: NOTICE_OVERDUE once when a removal deadline passes, escalation after the grace.

Runs on a schedule (every `deadlines_poll_seconds`), not on events: a deadline
passing is not an event anyone publishes. Each pass calls the same domain
commands as the API (api/services/notices.py: mark_overdue, escalate_overdue),
which re-check everything under the row lock, so two workers running at once,
or a pass repeated after a crash, emit nothing twice.

Time comes from a clock passed in; tests drive `run_once(now=...)` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from api.services.conferences import mark_overdue_commitments
from api.services.notices import NoticeCommands, utcnow
from api.settings import Settings
from api.store import deadlines as store

log = logging.getLogger("takedown.deadlines")

BATCH = 500


@dataclass(frozen=True)
class Pass:
    overdue: int
    escalated: int
    commitments_overdue: int = 0


class DeadlinesWorker:
    name = "deadlines"

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        notices: NoticeCommands,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.notices = notices
        self.clock = clock
        self.grace = timedelta(hours=settings.escalation_grace_hours)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once(self.clock())
                if done.overdue or done.escalated or done.commitments_overdue:
                    log.info(
                        "deadlines pass",
                        extra={"overdue": done.overdue, "escalated": done.escalated, "commitments": done.commitments_overdue},
                    )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("deadlines pass failed; next pass retries", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.deadlines_poll_seconds)

    async def run_once(self, now: datetime) -> Pass:
        """One pass at time `now`: tell of overdue notices, escalate those past the grace, tell of overdue commitments."""
        overdue = escalated = 0
        while True:
            async with self.pool.acquire() as conn:
                ids = await store.overdue(conn, now, BATCH)
            before = overdue
            for notice_id in ids:
                if await self.notices.mark_overdue(notice_id, now=now) is not None:
                    overdue += 1
            if len(ids) < BATCH or overdue == before:  # a full batch with no progress: leave it to the next pass
                break
        while True:
            async with self.pool.acquire() as conn:
                ids = await store.to_escalate(conn, now, self.grace, BATCH)
            before = escalated
            for notice_id in ids:
                if await self.notices.escalate_overdue(notice_id, now=now, grace=self.grace) is not None:
                    escalated += 1
            if len(ids) < BATCH or escalated == before:
                break
        # COMMITMENT_OVERDUE once per commitment (the conferences service guards the once).
        commitments = 0
        for _ in range(1000):  # bounded: at most 1000 batches per pass
            marked = await mark_overdue_commitments(self.pool, now, limit=BATCH)
            commitments += marked
            if marked < BATCH:
                break
        return Pass(overdue, escalated, commitments)
