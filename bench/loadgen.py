"""A lean HTTP/1.1 load generator: keep-alive connections over asyncio streams.

The servers under test and the load generator share this machine's two cores, so the
client's own cost is taken from the servers. httpx spent ~3 ms of CPU per request here
(more than the bare Starlette endpoint itself), which capped every concurrent figure;
this client writes the request and reads a Content-Length body (~0.5 ms of CPU a
mutation here, making its input included).
It is only for the benchmark's own loopback servers: no TLS, no redirects, no chunking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

IDLE_SECONDS = 2.0
REQUEST_TIMEOUT = 120.0  # a stalled server fails the benchmark instead of hanging it


class HttpError(RuntimeError):
    pass


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.last_used = time.monotonic()

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await self._post(path, body, headers)

    async def _post(self, path: str, body: bytes, headers: dict[str, str] | None) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}", "Content-Type: application/json",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding":
                raise HttpError("chunked responses are not supported by the load generator")
        if length is None:
            raise HttpError("a response without Content-Length")
        body = await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        return status, body

    async def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
        status, body = await self.post(path, json.dumps(payload).encode(), headers)
        if status != 200:
            raise HttpError(f"HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Client:
    """A pool of keep-alive connections to one base URL; a caller takes one for each request."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"the load generator speaks plain http to host:port only, not {base_url}")
        self.host, self.port = parts.hostname, parts.port
        self._idle: list[Connection] = []
        self._all: list[Connection] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        # uvicorn closes a keep-alive connection idle for 5 s; one idle for 2 s is not reused.
        while self._idle and time.monotonic() - self._idle[-1].last_used > IDLE_SECONDS:
            stale = self._idle.pop()
            self._all.remove(stale)
            await stale.close()
        conn = self._idle.pop() if self._idle else await self._open()
        try:
            yield conn
        except BaseException:
            await conn.close()  # a failed request may leave a half-read response behind
            self._all.remove(conn)
            raise
        self._idle.append(conn)

    async def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
        async with self.connection() as conn:
            return await conn.post_json(path, payload, headers)

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = Connection(reader, writer, f"{self.host}:{self.port}")
        self._all.append(conn)
        return conn

    async def aclose(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle.clear()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
