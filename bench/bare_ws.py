"""The events baseline: a plain `websockets` server that reads the same JetStream stream the API's
live hub reads (one ordered push consumer, deliver: new) and forwards each event's bytes to every
connected client whose subject patterns match. No authentication, GraphQL, access check or
redaction: what is left is the stack's own cost of a fan-out.

A client connects to ws://127.0.0.1:P/ and sends one JSON text frame, a list of NATS subject
patterns (`td.notice.*.<company id>`, or `td.>`); it then receives the CloudEvents as text frames.

    python bench/bare_ws.py --port P     (TAKEDOWN_NATS_URL, TAKEDOWN_STREAM_NAME from the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # run as a script, bench/ would come first on the path

import nats  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import api as js_api  # noqa: E402
from websockets.asyncio.server import ServerConnection, broadcast, serve  # noqa: E402
from websockets.http11 import Request, Response  # noqa: E402

from api.messaging.hub import subject_matches  # noqa: E402


async def main(port: int) -> None:
    clients: dict[ServerConnection, tuple[str, ...]] = {}

    async def handler(socket: ServerConnection) -> None:
        try:
            patterns = json.loads(await asyncio.wait_for(socket.recv(), 10))
        except (TimeoutError, ValueError):
            return
        clients[socket] = tuple(str(p) for p in patterns)
        try:
            await socket.wait_closed()
        finally:
            clients.pop(socket, None)

    async def on_message(msg: Msg) -> None:
        frame = msg.data.decode()
        broadcast([c for c, patterns in clients.items() if any(subject_matches(p, msg.subject) for p in patterns)], frame)

    def health(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        return None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nc = await nats.connect(os.environ["TAKEDOWN_NATS_URL"], name="bench-bare-ws")
    try:
        js = nc.jetstream(timeout=5)
        stream = os.environ.get("TAKEDOWN_STREAM_NAME", "TAKEDOWN")
        for _ in range(100):  # the relay declares the stream; wait for it
            with contextlib.suppress(Exception):
                await js.stream_info(stream)
                break
            await asyncio.sleep(0.1)
        await js.subscribe("td.>", stream=stream, cb=on_message, ordered_consumer=True,
                           deliver_policy=js_api.DeliverPolicy.NEW, idle_heartbeat=2.0)
        async with serve(handler, "127.0.0.1", port, process_request=health):
            await stop.wait()
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
