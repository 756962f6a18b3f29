"""Helpers for the event backbone tests: running workers in the test's loop, a live server, a graphql-ws client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn
import websockets
from starlette.applications import Starlette

from api.settings import Settings
from infra.stack import free_port


class Running:
    """A worker (anything with `run(stop)`) in a task of the current loop, stopped on exit."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Any:
        self.task = asyncio.create_task(self.worker.run(self.stop))
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        await self.halt()

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll until `check` holds; bounded in time."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve an ASGI app on a loopback port in this loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", ws="websockets-sansio", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


class GraphQLWs:
    """A minimal graphql-transport-ws client."""

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self.token = token
        self.socket: Any = None
        self._ids = 0
        # Notices reported only to see the subscription go live: a late one must not be
        # mistaken for what a test waits for next.
        self.ignored: set[str] = set()

    async def __aenter__(self) -> GraphQLWs:
        self.socket = await websockets.connect(f"ws://{self.address}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await self.socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}))
        ack = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.close()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op = str(self._ids)
        await self.socket.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}))
        return op

    async def frame(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next next/error/complete message (pings are answered)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame")
            message = json.loads(await asyncio.wait_for(self.socket.recv(), remaining))
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "pong":
                continue
            return message  # type: ignore[no-any-return]

    async def events(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """`count` event payloads; fails on an error frame."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            message = await self.frame(max(0.01, deadline - time.monotonic()))
            assert message["type"] == "next" and "errors" not in message["payload"], message
            event = message["payload"]["data"]["events"]
            if (event.get("notice") or {}).get("id") not in self.ignored:
                got.append(event)
        return got

    async def warm_up(self, report: Callable[[], Awaitable[str]], attempts: int = 50) -> dict[str, Any]:
        """Report (returning the notice id) until the subscription delivers; returns the first event.

        Every warm-up notice is ignored from then on, so a slow one cannot arrive later in a
        test's sequence.
        """
        warm: set[str] = set()
        for _ in range(attempts):
            warm.add(await report())
            try:
                first = (await self.events(1, timeout=1.0))[0]
            except (TimeoutError, AssertionError):
                continue
            assert first["notice"]["id"] in warm, first
            self.ignored |= warm
            return first
        raise AssertionError("the subscription never went live")

    async def silence(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within `seconds` (to prove that nothing does)."""
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.frame(seconds))
        return got


def settings_with(settings: Settings, **changes: Any) -> Settings:
    return settings.with_overrides(**changes)
