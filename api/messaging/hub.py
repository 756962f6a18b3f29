"""The live fan-out hub: ONE JetStream subscription per API process, shared by every subscriber.

A WebSocket subscription does not get a consumer of its own (that would cost
the server a consumer per browser tab); it registers a Feed here with the
subject patterns it may receive (a company: `td.notice.*.<its id>`, ...), and
the hub copies each event to the matching feeds in memory.

The hub reads the stream through an ordered consumer (deliver: new), which
nats-py recreates from the last stream sequence after a gap or a reconnect,
so a NATS restart does not silently drop live events.

Feeds are bounded: a subscriber that does not keep up overflows, is told so
(`Feed.get` raises FeedOverflow) and must resume with its cursor. Nobody else
waits for it, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api as js_api

from ..settings import Settings
from .nats import SEQ, SUBJECTS, ensure_stream

log = logging.getLogger("takedown.hub")


@dataclass(frozen=True)
class LiveEvent:
    seq: int  # outbox position: the public cursor
    subject: str
    envelope: dict[str, Any]
    received: float = 0.0  # the event loop's clock when it arrived: a state read started later includes it


class FeedOverflow(Exception):
    """The subscriber fell further behind than its buffer; it must resume from its cursor."""


_OVERFLOW = object()


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: `*` is one token, `>` is one or more trailing tokens."""
    p_tokens, s_tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (token != "*" and token != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


class Feed:
    def __init__(self, patterns: Sequence[str] | None, maxsize: int) -> None:
        self.patterns = tuple(patterns) if patterns is not None else None
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize + 1)  # +1: room for the overflow marker
        self._maxsize = maxsize
        self.overflowed = False

    def wants(self, subject: str) -> bool:
        return self.patterns is None or any(subject_matches(p, subject) for p in self.patterns)

    def offer(self, event: LiveEvent) -> None:
        if self.overflowed:
            return
        if self._queue.qsize() >= self._maxsize:
            self.overflowed = True
            self._drain()  # free the memory at once; the subscriber resumes from PostgreSQL
            self._queue.put_nowait(_OVERFLOW)
            return
        self._queue.put_nowait(event)

    def end(self) -> None:
        """The hub stops: end like an overflow, so the subscriber is told to resume elsewhere with its cursor."""
        if not self.overflowed:
            self.overflowed = True
            self._drain()
            self._queue.put_nowait(_OVERFLOW)

    def reset(self) -> None:
        """Forget an overflow (the caller catches up from the system of record instead)."""
        self._drain()
        self.overflowed = False

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def pending(self) -> list[LiveEvent]:
        """Take what is buffered without waiting (used after a replay)."""
        items: list[LiveEvent] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _OVERFLOW:
                raise FeedOverflow()
            items.append(item)  # type: ignore[arg-type]
        return items

    async def get(self) -> LiveEvent:
        item = await self._queue.get()
        if item is _OVERFLOW:
            raise FeedOverflow()
        return item  # type: ignore[return-value]


class LiveHub:
    def __init__(self, settings: Settings, connection: Callable[[], NATS | None]) -> None:
        self.settings = settings
        self._connection = connection
        self._feeds: set[Feed] = set()
        self._subscription: Any = None
        self._lock = asyncio.Lock()
        self._stream_floor = 0
        self.received = 0

    @property
    def running(self) -> bool:
        return self._subscription is not None

    async def start(self, wait: float = 10.0) -> None:
        """Subscribe once (idempotent); waits up to `wait` seconds for the NATS connection."""
        async with self._lock:
            if self._subscription is not None:
                return
            deadline = asyncio.get_running_loop().time() + wait
            while True:
                nc = self._connection()
                if nc is not None and nc.is_connected:
                    try:
                        js = nc.jetstream(timeout=5)
                        info = await ensure_stream(js, self.settings)
                        # An ordered consumer that resets before its first message restarts
                        # from sequence 1 and would replay the whole stream; nothing at or
                        # below the head at start is live, so it is dropped (see _on_message).
                        self._stream_floor = info.state.last_seq
                        self._subscription = await js.subscribe(
                            SUBJECTS,
                            stream=self.settings.stream_name,
                            cb=self._on_message,
                            ordered_consumer=True,
                            deliver_policy=js_api.DeliverPolicy.NEW,
                            idle_heartbeat=2.0,
                        )
                        return
                    except Exception as exc:
                        if asyncio.get_running_loop().time() >= deadline:
                            raise
                        log.warning("live hub cannot subscribe yet", extra={"error": type(exc).__name__})
                elif asyncio.get_running_loop().time() >= deadline:
                    raise ConnectionError("NATS is not connected")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Unsubscribe, and end every feed: no subscriber waits for ever on a hub that is gone."""
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        for feed in list(self._feeds):
            feed.end()

    @contextlib.contextmanager
    def feed(self, patterns: Sequence[str] | None) -> Iterator[Feed]:
        feed = Feed(patterns, self.settings.subscription_buffer)
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)

    async def _on_message(self, msg: Msg) -> None:
        metadata = msg.metadata if msg.reply else None
        if metadata is not None and metadata.sequence.stream <= self._stream_floor:
            return
        try:
            seq = int((msg.headers or {}).get(SEQ, "0"))
            event = LiveEvent(seq, msg.subject, json.loads(msg.data), asyncio.get_running_loop().time())
        except (ValueError, TypeError):
            log.error("undecodable event on the stream", extra={"subject": msg.subject})
            return
        self.received += 1
        for feed in list(self._feeds):
            if feed.wants(event.subject):
                feed.offer(event)
