"""Connecting to NATS and declaring the stream and the durable consumers (contract/EVENTS.md).

The stream is declared by whoever starts first (the relay, a worker) and updated
in place when the configuration changes, so a deployment never needs a manual
`nats stream add`. Consumer configuration is data here, not scattered through
the workers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError

from ..settings import Settings

log = logging.getLogger("takedown.messaging")

SUBJECTS = "td.>"
# Headers on every published event. Nats-Msg-Id makes a re-publish a no-op inside the
# duplicate window; Td-Seq carries the outbox position, which is the public cursor.
MSG_ID = "Nats-Msg-Id"
SEQ = "Td-Seq"
CONTENT_TYPE = "application/cloudevents+json"


class Stopped(Exception):
    """Asked to stop before a connection was made."""


async def connect(settings: Settings, name: str, *, wait: float | None = None, stop: asyncio.Event | None = None) -> NATS:
    """Connect, retrying until `wait` seconds have passed (None: forever) or `stop` is set; reconnects by itself afterwards."""
    deadline = None if wait is None else asyncio.get_running_loop().time() + wait
    delay = 0.2
    while True:
        if stop is not None and stop.is_set():
            raise Stopped()
        try:
            return await nats.connect(
                settings.nats_url,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
            )
        except Exception as exc:  # nats raises several types while the server is unreachable
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                raise
            log.warning("nats not reachable yet", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def stream_config(settings: Settings) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=settings.stream_name,
        subjects=[SUBJECTS],
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        num_replicas=settings.stream_replicas,
        duplicate_window=float(settings.stream_duplicate_window_seconds),
        max_age=float(settings.stream_max_age_days * 86400),
        discard=js_api.DiscardPolicy.OLD,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> js_api.StreamInfo:
    """Create the stream, or bring an existing one to the configured limits."""
    config = stream_config(settings)
    try:
        await js.stream_info(settings.stream_name)
    except NotFoundError:
        try:
            return await js.add_stream(config)
        except BadRequestError:
            pass  # another process created it between our look and our add
    return await js.update_stream(config)


@dataclass(frozen=True)
class ConsumerSpec:
    """A worker's durable pull consumer: explicit acks, redelivery after ack_wait."""

    durable: str
    filter_subject: str = SUBJECTS
    ack_wait_seconds: float = 30.0
    max_ack_pending: int = 1000
    deliver_policy: js_api.DeliverPolicy = js_api.DeliverPolicy.ALL

    def config(self) -> js_api.ConsumerConfig:
        return js_api.ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_seconds,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=self.deliver_policy,
            max_deliver=-1,  # a failing handler naks with backoff; giving up would lose an event
        )
