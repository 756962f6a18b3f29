"""What one API process holds open, created and closed by the app's lifespan.

A plain holder passed explicitly to routes and the GraphQL context: no module
globals, so tests can run several apps side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import httpx
from nats.aio.client import Client as NATS

from .auth.external import ExternalJwks
from .auth.keys import SigningKey, load_signing_key
from .auth.tokens import TokenVerifier
from .domain.notices import ContentCategory
from .messaging.hub import LiveHub
from .metrics import Metrics
from .protect import UrlProtector, load_url_protector
from .ratelimit import RateLimiter
from .services.events import NoticeSnapshots
from .services.notices import NoticeCommands, utcnow
from .services.organizations import KnownOrganizations
from .settings import Settings
from .store.pool import QueryObserver, create_pool

log = logging.getLogger("takedown.resources")


@dataclass
class Resources:
    settings: Settings
    signing_key: SigningKey
    verifier: TokenVerifier
    metrics: Metrics
    rate_limiter: RateLimiter
    http: httpx.AsyncClient
    protector: UrlProtector
    clock: Callable[[], datetime] = utcnow
    pool: asyncpg.Pool | None = None
    query_observer: QueryObserver | None = None
    organizations: KnownOrganizations = field(default_factory=KnownOrganizations)
    _notices: NoticeCommands | None = field(default=None, repr=False)
    nats: NATS | None = None
    _nats_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _closing: bool = field(default=False, repr=False)
    _connecting: NATS | None = field(default=None, repr=False)
    _hub: LiveHub | None = field(default=None, repr=False)
    _snapshots: NoticeSnapshots | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Resources:
        signing_key = load_signing_key(settings)
        http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        external = (
            ExternalJwks(settings.external_jwks_url, http=http, ttl_seconds=settings.jwks_cache_seconds)
            if settings.external_jwks_url
            else None
        )
        return cls(
            settings=settings,
            signing_key=signing_key,
            verifier=TokenVerifier(settings, signing_key, external),
            metrics=Metrics(),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            http=http,
            protector=load_url_protector(settings),
        )

    @property
    def notices(self) -> NoticeCommands:
        if self._notices is None:
            deadlines = {
                ContentCategory(name): timedelta(hours=hours)
                for name, hours in self.settings.deadline_hours
                if name in ContentCategory.__members__
            }
            self._notices = NoticeCommands(self.db, self.protector, deadlines=deadlines, clock=self.clock, organizations=self.organizations)
        return self._notices

    @property
    def hub(self) -> LiveHub:
        """The process's one live subscription to the event stream, shared by all GraphQL subscribers."""
        if self._hub is None:
            self._hub = LiveHub(self.settings, lambda: self.nats)
        return self._hub

    @property
    def notice_snapshots(self) -> NoticeSnapshots:
        """Notice rows read once per live event for all of the process's subscribers."""
        if self._snapshots is None:
            self._snapshots = NoticeSnapshots(self.db)
        return self._snapshots

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "the database pool is opened by the app's lifespan"
        return self.pool

    async def open(self) -> None:
        self.pool = await create_pool(self.settings, observer=self.query_observer)
        self._nats_task = asyncio.create_task(self._connect_nats(), name="nats-connect")

    async def _connect_nats(self) -> None:
        """Keep trying: the API serves (and /readyz reports) while NATS is still coming up."""
        delay = 0.2
        while not self._closing:
            # Our own client object, so that a connect cut short (shutdown during start-up,
            # an unreachable server) can still be closed instead of leaking its socket.
            client = self._connecting = NATS()
            try:
                await client.connect(
                    self.settings.nats_url,
                    name="takedown-api",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                )
                self.nats = client
                return
            except asyncio.CancelledError:
                await _close_quietly(client)
                raise
            except Exception as exc:  # nats raises several types while the server is unreachable
                # nats-py turns a cancellation during its handshake into TimeoutError, so the
                # closing flag, not the exception type, says whether to try again.
                await _close_quietly(client)
                if self._closing:
                    return
                log.warning("nats not reachable yet", extra={"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        self._closing = True
        if self._hub is not None:
            await self._hub.stop()
        if self._nats_task is not None and not self._nats_task.done():
            # nats-py retries its first connection internally and turns a cancellation into a
            # timeout, so close the client it is working on, then cancel, and never wait for ever.
            if self._connecting is not None:
                await _close_quietly(self._connecting)
            self._nats_task.cancel()
            try:
                await asyncio.wait_for(self._nats_task, 5.0)
            except (asyncio.CancelledError, Exception):
                log.warning("the NATS connection attempt did not stop in time")
        if self.nats is not None and not self.nats.is_closed:
            await self.nats.close()
        if self.pool is not None:
            await self.pool.close()
        await self.http.aclose()


async def _close_quietly(client: NATS) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 2.0)
