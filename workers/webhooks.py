"""The webhooks worker: every event an organization may see, POSTed to its webhooks, signed, retried.

Two halves, so that receiving events never waits for anyone's endpoint:
1. A durable JetStream consumer (through workers/runner.py) turns each event
   into one job per matching webhook (event type subscribed, organization may
   see the event, webhook older than the event), in PostgreSQL, idempotently.
2. A delivery loop leases due jobs and POSTs them concurrently, each with a
   timeout, at most `webhook_per_endpoint` in flight per endpoint and
   `webhook_concurrency` overall: one slow or failing endpoint holds up only
   its own deliveries. Every attempt is recorded. A failure is retried with
   exponential backoff and jitter, capped, for at least `webhook_retry_hours`
   (24 by default) after the first attempt.

The body is the CloudEvent with `data` redacted for the organization at
delivery time (api/services/events.py), with the Standard Webhooks headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import httpx

from api.domain.errors import BadUserInput
from api.domain.organizations import OrganizationKind, Viewer
from api.messaging.nats import CONTENT_TYPE, ConsumerSpec
from api.protect import UrlProtector
from api.services import events as event_service
from api.services import webhooks as service
from api.services.notices import utcnow
from api.settings import Settings
from api.store import event_reads
from api.store import organizations as organizations_store
from api.store import webhooks as store

from .runner import Received, Runner

log = logging.getLogger("takedown.webhooks")

POLL_SECONDS = 0.5


def backoff(attempt: int, settings: Settings, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential, capped, with jitter (half to all of the step), so failing endpoints are not hit in lockstep."""
    step = min(settings.webhook_backoff_base_seconds * 2 ** (attempt - 1), settings.webhook_backoff_max_seconds)
    return timedelta(seconds=step * (0.5 + 0.5 * rng()))


def next_attempt(attempt: int, first_attempt_at: datetime, now: datetime, settings: Settings) -> datetime | None:
    """When to try again after failed attempt number `attempt`; None once the retry period is over."""
    if now - first_attempt_at >= timedelta(hours=settings.webhook_retry_hours):
        return None
    return now + backoff(attempt, settings)


def viewer_for(webhook: store.WebhookRow, kind: OrganizationKind) -> Viewer:
    """The organization as a viewer: tiers follow its kind and relation, never roles."""
    return Viewer(subject=f"webhook:{webhook.id}", organization_id=webhook.organization_id, organization_kind=kind, roles=frozenset())


class WebhooksWorker:
    name = "webhooks"

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        protector: UrlProtector,
        http: httpx.AsyncClient,
        *,
        durable: str = "takedown-webhooks",
        clock: Callable[[], datetime] = utcnow,
        spec: ConsumerSpec | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.protector = protector
        self.http = http
        self.clock = clock
        self._wake = asyncio.Event()
        self.runner = Runner(
            settings,
            pool,
            spec or ConsumerSpec(durable, ack_wait_seconds=settings.worker_ack_wait_seconds),
            self.handle,
            after_commit=lambda _: self._wake.set(),
        )
        self.attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Both halves live and die together: if one fails, the other is cancelled (no orphan consumer)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.runner.run(stop))
            group.create_task(self.deliver_loop(stop))

    # ------------------------------------------------------------ 1. events -> jobs

    async def handle(self, conn: asyncpg.Connection, event: Received) -> None:
        record = event_reads.EventRecord(event.seq, event.id, event.subject, _occurred(event), event.envelope)
        targets = await store.matching(conn, event_service.type_name(record.key), record.occurred_at)
        chosen: list[UUID] = []
        for target in targets:
            if await event_service.readable(conn, viewer_for(target.webhook, target.organization_kind), [record]):
                chosen.append(target.webhook.id)
        await store.insert_jobs(conn, chosen, event.id, event.seq, self.clock())

    # ------------------------------------------------------------ 2. jobs -> POSTs

    async def deliver_loop(self, stop: asyncio.Event) -> None:
        in_flight: Counter[UUID] = Counter()
        tasks: set[asyncio.Task[None]] = set()
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        while not stop.is_set():
            self._wake.clear()
            capacity = self.settings.webhook_concurrency - len(tasks)
            if capacity > 0:
                now = self.clock()
                try:
                    async with self.pool.acquire() as conn:
                        jobs = await store.claim(
                            conn,
                            now=now,
                            busy=[w for w, n in in_flight.items() if n > 0],
                            lease_until=now + lease,
                            per_endpoint=self.settings.webhook_per_endpoint,
                            limit=capacity,
                        )
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("cannot claim webhook jobs", extra={"error": type(exc).__name__})
                    jobs = []
                for job in jobs:
                    in_flight[job.webhook_id] += 1
                    task = asyncio.create_task(self._deliver_guarded(job))
                    tasks.add(task)
                    task.add_done_callback(_finished(tasks, in_flight, job.webhook_id))
                if jobs and len(jobs) == capacity:
                    continue
            await _wait_any(stop, self._wake, POLL_SECONDS)
        # Stopping: let deliveries in hand finish (each is bounded by its timeout); a job
        # cut off here keeps its lease and is retried when the lease runs out.
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.webhook_timeout_seconds + 1)
            for task in tasks:
                task.cancel()

    async def _deliver_guarded(self, job: store.Job) -> None:
        try:
            await self.deliver(job)
        except Exception:
            log.exception("webhook delivery crashed; the lease will expire and it is retried")

    async def deliver(self, job: store.Job) -> None:
        async with self.pool.acquire() as conn:
            webhook = await store.get(conn, job.webhook_id)
            record = await event_reads.by_id(conn, job.event_id)
            organization = await organizations_store.get(conn, webhook.organization_id) if webhook else None
            delivered = (
                await event_service.readable(conn, viewer_for(webhook, organization.kind), [record])
                if webhook and webhook.active and organization and record
                else []
            )
            if not delivered or webhook is None:
                await store.finish_without_attempt(conn, job, self.clock())
                return
        body = json.dumps(event_service.redacted(delivered[0]), separators=(",", ":")).encode()
        status: int | None = None
        error: str | None = None
        try:
            target = await service.pinned_target(webhook.url, production=self.settings.production)
            secret = service.secret_of(self.protector, webhook)
            timestamp = int(time.time())
            message_id = str(job.event_id)  # the same across retries, so receivers can deduplicate
            # One deadline for the whole exchange (httpx's timeout is per phase, so a server
            # dripping bytes could hold a slot for ever), and the body is never read.
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                async with self.http.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={
                        "host": target.host_header,
                        "content-type": CONTENT_TYPE,
                        "webhook-id": message_id,
                        "webhook-timestamp": str(timestamp),
                        "webhook-signature": service.sign(secret, message_id, timestamp, body),
                        "user-agent": "TakedownExchange-Webhooks/1",
                    },
                    extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else {},
                ) as response:
                    status = response.status_code
        except BadUserInput as exc:
            error = exc.message
        except TimeoutError:
            error = "Timeout"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        succeeded = status is not None and 200 <= status < 300
        now = self.clock()
        first = job.first_attempt_at or now
        retry_at = None if succeeded else next_attempt(job.attempts + 1, first, now, self.settings)
        self.attempts += 1
        async with self.pool.acquire() as conn, conn.transaction():
            await store.record_attempt(
                conn, job, at=now, status=status, succeeded=succeeded, error=error, next_attempt_at=retry_at
            )
        if retry_at is not None:
            self._schedule_wake(retry_at - now)

    def _schedule_wake(self, delay: timedelta) -> None:
        """Short backoffs (tests, first retries) should not wait for the poll."""
        seconds = delay.total_seconds()
        if seconds < POLL_SECONDS:
            asyncio.get_running_loop().call_later(max(seconds, 0.0), self._wake.set)


def _finished(
    tasks: set[asyncio.Task[None]], in_flight: Counter[UUID], webhook_id: UUID
) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        in_flight[webhook_id] -= 1

    return done


def _occurred(event: Received) -> datetime:
    return datetime.fromisoformat(str(event.envelope.get("time", "")).replace("Z", "+00:00"))


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
