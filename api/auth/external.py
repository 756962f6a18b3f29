"""The JWKS of an external OpenID Connect provider, fetched and cached.

Keys are refreshed after a TTL, and at once when a token names an unknown kid
(the provider rotated), but at most every few seconds so that tokens with
made-up kids cannot turn the API into a request amplifier.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from joserfc.jwk import KeySet

from ..domain.errors import Unauthenticated, Unavailable

MIN_REFRESH_INTERVAL = 5.0


class ExternalJwks:
    def __init__(self, url: str, *, http: httpx.AsyncClient, ttl_seconds: float) -> None:
        self.url = url
        self.http = http
        self.ttl = ttl_seconds
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, kid: str | None) -> KeySet:
        now = time.monotonic()
        stale = self._keys is None or now - self._fetched_at > self.ttl
        unknown = kid is not None and self._keys is not None and not _has_kid(self._keys, kid)
        if stale or (unknown and now - self._fetched_at > MIN_REFRESH_INTERVAL):
            async with self._lock:
                if self._keys is None or time.monotonic() - self._fetched_at > MIN_REFRESH_INTERVAL:
                    await self._refresh()
        assert self._keys is not None
        return self._keys

    async def _refresh(self) -> None:
        try:
            response = await self.http.get(self.url, timeout=5.0)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys is None:
                raise Unavailable("the external identity provider's keys cannot be fetched") from exc
            return  # keep serving the keys we have; the provider may be briefly down
        except Exception:
            raise Unauthenticated("the external identity provider published an unusable key set") from None
        self._keys = keys
        self._fetched_at = time.monotonic()


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
