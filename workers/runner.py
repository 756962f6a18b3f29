"""The one place that acks, naks and terms: a durable JetStream pull consumer around a handler.

Guarantees (tests/test_relay.py proves them):
- At-least-once delivery from JetStream, made effectively-once by the inbox:
  the handler runs in a PostgreSQL transaction that also records (consumer,
  event id); a redelivered event finds the record and is acked untouched.
- Ack only after commit: dying before the ack means redelivery (after
  ack_wait), never loss; dying before the commit rolls the effect back.
- A failing handler naks with a growing delay; an undecodable message is
  termed (it would fail forever) and logged.
- Stop (SIGTERM) finishes the message in hand, naks the rest of the fetched
  batch so they are redelivered at once to another worker, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from api.messaging.nats import SEQ, ConsumerSpec, Stopped, connect, ensure_stream
from api.settings import Settings
from api.store import inbox

log = logging.getLogger("takedown.worker")


@dataclass(frozen=True)
class Received:
    """An event as a consumer sees it: the CloudEvent, its subject and its outbox position."""

    id: UUID
    seq: int
    subject: str
    envelope: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.envelope["type"])


Handler = Callable[[asyncpg.Connection, Received], Awaitable[None]]


class InvalidEvent(ValueError):
    pass


def decode(msg: Msg) -> Received:
    try:
        envelope = json.loads(msg.data)
        return Received(UUID(envelope["id"]), int((msg.headers or {}).get(SEQ, 0)), msg.subject, envelope)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidEvent(str(exc)) from None


def redelivery_delay(deliveries: int) -> float:
    return float(min(2 ** max(deliveries - 1, 0), 60))


class Runner:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        batch: int = 50,
        after_commit: Callable[[Received], None] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.spec = spec
        self.handler = handler
        self.batch = batch
        self.after_commit = after_commit  # e.g. wake a loop that reads what the handler wrote
        self.handled = 0  # events whose handler ran (not counting redeliveries)
        self.ready = asyncio.Event()  # set once the consumer exists
        self.nc: NATS | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            self.nc = await connect(self.settings, f"takedown-{self.spec.durable}", stop=stop)
        except Stopped:
            return
        try:
            js = self.nc.jetstream(timeout=5)
            subscription = await self._subscribe(js, stop)
            if subscription is None:
                return
            self.ready.set()
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(self.batch, timeout=1.0)
                except TimeoutError:
                    continue
                except Exception as exc:  # disconnected: the server keeps our place
                    log.warning("fetch failed", extra={"consumer": self.spec.durable, "error": type(exc).__name__})
                    await _pause(stop, 1.0)
                    continue
                for msg in messages:
                    if stop.is_set():
                        with contextlib.suppress(Exception):
                            await msg.nak()  # not started: hand it back at once
                        continue
                    await self.process(msg)
        finally:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)  # the naks and acks above must reach the server
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _subscribe(self, js: JetStreamContext, stop: asyncio.Event) -> Any:
        while not stop.is_set():
            try:
                await ensure_stream(js, self.settings)
                return await js.pull_subscribe(
                    self.spec.filter_subject, durable=self.spec.durable, stream=self.settings.stream_name, config=self.spec.config()
                )
            except Exception as exc:
                log.warning("cannot bind the consumer yet", extra={"consumer": self.spec.durable, "error": type(exc).__name__})
                await _pause(stop, 1.0)
        return None

    async def process(self, msg: Msg) -> None:
        try:
            event = decode(msg)
        except InvalidEvent as exc:
            log.error("poison message termed", extra={"subject": msg.subject, "error": str(exc)})
            await msg.term()
            return
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                first_time = await inbox.record_once(conn, self.spec.durable, event.id)
                if first_time:
                    await self.handler(conn, event)
        except Exception:
            deliveries = msg.metadata.num_delivered if msg.metadata else 1
            log.exception("handler failed; will be redelivered", extra={"event_id": str(event.id), "consumer": self.spec.durable})
            with contextlib.suppress(Exception):
                await msg.nak(delay=redelivery_delay(deliveries))
            return
        if first_time:
            self.handled += 1
            if self.after_commit is not None:
                self.after_commit(event)
        # Only after the commit: dying before this line means a redelivery, which the inbox absorbs.
        try:
            await msg.ack()
        except Exception as exc:
            log.warning("ack failed; the redelivery will be absorbed by the inbox", extra={"error": type(exc).__name__})


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
