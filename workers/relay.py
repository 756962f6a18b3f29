"""The outbox relay: committed event rows -> JetStream stream TAKEDOWN, in commit order, none lost.

Guarantees (tests/test_relay.py proves each):
- Only committed rows are published: the relay reads the events table, which
  a command writes in the transaction of its change.
- Commit order: rows are read `ORDER BY seq` (seq is commit order, see
  api/store/events.py) and published in that order on one connection.
- At most one relay publishes at a time: it holds a session-level advisory
  lock; others stand by and take over when its connection goes away.
- No loss: a row is marked published only after JetStream acknowledged it;
  until then it stays in PostgreSQL (NATS down for an hour means an hour of
  rows waiting, then published in order).
- No duplicate: each message carries `Nats-Msg-Id` = event id, so a
  re-publish after a crash between publish and mark is dropped by the
  stream's duplicate window, and the ack returns the original stream seq.

Woken by LISTEN/NOTIFY (trigger in migration 0004), with a slow poll as a
safety net for a lost notification or connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PubAck

from api.messaging.nats import CONTENT_TYPE, MSG_ID, SEQ, Stopped, connect, ensure_stream
from api.settings import Settings
from api.store import outbox

log = logging.getLogger("takedown.relay")

CHANNEL = "td_events"
PUBLISH_TIMEOUT = 5.0
STANDBY_SECONDS = 1.0


class Relay:
    name = "relay"

    def __init__(self, settings: Settings, *, batch: int | None = None, poll_seconds: float | None = None) -> None:
        self.settings = settings
        self.batch = batch or settings.relay_batch
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.relay_poll_seconds
        self.published = 0  # events acknowledged by JetStream since start (the benchmark reads it)
        self.active = asyncio.Event()  # set while this relay holds the lock
        self._wake = asyncio.Event()
        self.nc: NATS | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            self.nc = await connect(self.settings, "takedown-relay", stop=stop)
        except Stopped:
            return
        js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT)
        try:
            await self._ensure_stream(js, stop)
            delay = 0.2
            while not stop.is_set():
                try:
                    await self._session(js, stop)
                    delay = 0.2
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("relay lost PostgreSQL; retrying", extra={"error": type(exc).__name__})
                    await _sleep_or_stop(stop, delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self.active.clear()
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _ensure_stream(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await ensure_stream(js, self.settings)
                return
            except Exception as exc:  # NATS down or JetStream not ready yet
                log.warning("cannot declare the stream yet", extra={"error": type(exc).__name__})
                await _sleep_or_stop(stop, 1.0)

    async def _session(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """One PostgreSQL session: stand by until the lock is ours, then pump until stopped."""
        # A query that hangs (a network partition) must end, or a standby could never take over.
        conn = await asyncpg.connect(
            self.settings.database_url, timeout=self.settings.db_timeout_seconds, command_timeout=30
        )
        try:
            while not await outbox.try_lock(conn):
                if await _sleep_or_stop(stop, STANDBY_SECONDS):
                    return
            self.active.set()
            await conn.add_listener(CHANNEL, self._notified)
            await self._pump(conn, js, stop)
        finally:
            self.active.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _pump(self, conn: asyncpg.Connection, js: JetStreamContext, stop: asyncio.Event) -> None:
        failures = 0
        # The acknowledged rows of the previous round are marked while the next round publishes
        # (the mark is PostgreSQL's work, the publish NATS's): a round costs the longer of the two,
        # not their sum. Marks still happen only after JetStream acknowledged, on the connection
        # that holds the lock: if we lost the lock (the connection died), marking fails and another
        # relay re-publishes from the first unmarked row, deduplicated by Nats-Msg-Id.
        to_mark: list[tuple[int, int]] = []
        after = 0  # rows up to here are published and being marked
        try:
            while not stop.is_set():
                self._wake.clear()  # before reading: a NOTIFY during the read wakes the next round
                rows = await outbox.unpublished(conn, self.batch, after=after)
                if not rows:
                    await self._mark(conn, to_mark)
                    to_mark = []
                    await _wait_any(stop, self._wake, self.poll_seconds)
                    continue
                publishing = asyncio.create_task(self.publish(js, rows))
                try:
                    await self._mark(conn, to_mark)
                except BaseException:
                    # The session (and with it the lock) is being given up: stop publishing too.
                    publishing.cancel()
                    with contextlib.suppress(BaseException):
                        await publishing
                    raise
                to_mark = []
                acked = to_mark = await publishing
                if len(acked) < len(rows):
                    await self._mark(conn, to_mark)
                    to_mark = []
                    after = 0  # start again from the first unpublished row
                    failures += 1
                    await _sleep_or_stop(stop, min(0.2 * 2**failures, 2.0))
                else:
                    after = rows[-1].seq
                    failures = 0
        finally:
            if to_mark and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await self._mark(conn, to_mark)  # stopping: what JetStream acknowledged is marked

    async def _mark(self, conn: asyncpg.Connection, acked: list[tuple[int, int]]) -> None:
        """Mark acknowledged rows published (counted in `published` once marked)."""
        if acked:
            await outbox.mark_published(conn, acked)
            self.published += len(acked)

    async def publish(self, js: JetStreamContext, rows: Sequence[outbox.Pending]) -> list[tuple[int, int]]:
        """Publish pipelined; return (seq, stream seq) for the acknowledged prefix, in order.

        Publishes go out on one connection in seq order, so the stream stores them in
        that order. Only the contiguous acknowledged prefix counts: a later row acked
        after an earlier one failed is re-published next round and deduplicated.
        """
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for row in rows:
                headers = {MSG_ID: str(row.id), SEQ: str(row.seq), "Content-Type": CONTENT_TYPE}
                futures.append(await js.publish_async(row.subject, row.body.encode(), headers=headers))
            if futures:
                await asyncio.wait(futures, timeout=PUBLISH_TIMEOUT)
        except Exception as exc:  # disconnected, buffer full: the rows stay unpublished
            log.warning("publish failed; rows stay in the outbox", extra={"error": type(exc).__name__})
        acked: list[tuple[int, int]] = []
        for row, future in zip(rows, futures, strict=False):
            if not future.done() or future.cancelled() or future.exception() is not None:
                break
            acked.append((row.seq, future.result().seq))
        for future in futures:
            if not future.done():
                future.cancel()
        return acked


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stopped first; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
