"""One settings object, built from the environment once and passed down.

Only `Settings.from_env` reads `os.environ`. Every value has a development
default; in production (`TAKEDOWN_ENV=production`) the ones that protect data
(database, NATS, signing key, issuer) must be set explicitly, and a missing one
is a clear start-up error rather than a silent insecure default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "TAKEDOWN_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    # Empty URLs mean: start the embedded stack (`takedown dev`, tests).
    database_url: str = ""
    nats_url: str = ""
    data_dir: Path = PROJECT_ROOT / ".data"

    # Tokens: the platform signs with its own key; external issuers may be trusted too.
    jwt_issuer: str = "takedown-exchange"
    jwt_audience: str = "takedown-api"
    jwt_algorithms: tuple[str, ...] = ("ES256", "RS256", "EdDSA")
    signing_key_pem: str = field(default="", repr=False)
    signing_key_file: Path | None = None
    token_ttl_seconds: int = 3600
    external_jwks_url: str = ""
    external_issuer: str = ""
    jwks_cache_seconds: int = 300
    jwt_leeway_seconds: int = 30  # clock skew allowed on expiry; a subscription also ends this long after it

    # Protected notice data (api/protect.py) and deadlines.
    url_keys: str = field(default="", repr=False)  # "<id>:<base64 32 bytes>,..."
    url_key_id: str = ""  # the active key; the first listed by default
    url_hmac_key: str = field(default="", repr=False)
    deadline_hours: tuple[tuple[str, int], ...] = ()  # per category; 24 hours by default
    escalation_grace_hours: int = 24

    # The event backbone (contract/EVENTS.md): the JetStream stream, the relay, workers, webhooks.
    stream_name: str = "TAKEDOWN"
    stream_replicas: int = 1  # 3 in a cluster (infra/nats/)
    stream_duplicate_window_seconds: int = 120  # a relay re-publish inside it is dropped by JetStream
    stream_max_age_days: int = 30  # retention; PostgreSQL keeps every event regardless
    relay_batch: int = 1000
    relay_poll_seconds: float = 2.0  # safety net under LISTEN/NOTIFY
    worker_ack_wait_seconds: int = 30
    subscription_buffer: int = 1000  # live events queued per subscriber before it is cut off
    subscription_recheck_seconds: float = 60.0  # an open subscription re-checks its API client's revocation
    deadlines_poll_seconds: float = 30.0
    webhook_timeout_seconds: float = 10.0
    webhook_retry_hours: int = 24  # keep retrying a failing endpoint at least this long
    webhook_backoff_base_seconds: float = 30.0
    webhook_backoff_max_seconds: float = 3 * 3600.0
    webhook_concurrency: int = 32  # deliveries in flight per worker process
    webhook_per_endpoint: int = 4  # in flight per endpoint, so one slow endpoint cannot take every slot

    # WebSocket per-message compression costs ~60 KB of zlib state per connection;
    # subscriptions are many and their frames small, so it is off unless asked for.
    ws_compression: bool = False

    # GraphQL guards.
    graphiql: bool | None = None  # None: on in development, off in production
    introspection: bool | None = None  # None: on in development, off in production
    max_query_depth: int = 12
    max_query_cost: int = 5000
    max_body_bytes: int = 2 * 1024 * 1024
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 120

    # Database pool.
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_timeout_seconds: float = 5.0

    log_level: str = "INFO"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.production) if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return (not self.production) if self.introspection is None else self.introspection

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        settings = cls(
            env=read.choice("ENV", ("development", "production", "test"), cls.env),
            database_url=read.text("DATABASE_URL", ""),
            nats_url=read.text("NATS_URL", ""),
            data_dir=Path(read.text("DATA_DIR", str(cls.data_dir))),
            jwt_issuer=read.text("JWT_ISSUER", cls.jwt_issuer),
            jwt_audience=read.text("JWT_AUDIENCE", cls.jwt_audience),
            jwt_algorithms=read.items("JWT_ALGORITHMS", cls.jwt_algorithms),
            signing_key_pem=read.text("SIGNING_KEY", ""),
            signing_key_file=read.path("SIGNING_KEY_FILE"),
            token_ttl_seconds=read.integer("TOKEN_TTL_SECONDS", cls.token_ttl_seconds),
            external_jwks_url=read.text("EXTERNAL_JWKS_URL", ""),
            external_issuer=read.text("EXTERNAL_ISSUER", ""),
            jwks_cache_seconds=read.integer("JWKS_CACHE_SECONDS", cls.jwks_cache_seconds),
            jwt_leeway_seconds=read.integer("JWT_LEEWAY_SECONDS", cls.jwt_leeway_seconds),
            url_keys=read.text("URL_KEYS", ""),
            url_key_id=read.text("URL_KEY_ID", ""),
            url_hmac_key=read.text("URL_HMAC_KEY", ""),
            deadline_hours=read.pairs("DEADLINE_HOURS"),
            escalation_grace_hours=read.integer("ESCALATION_GRACE_HOURS", cls.escalation_grace_hours),
            stream_name=read.text("STREAM_NAME", cls.stream_name),
            stream_replicas=read.integer("STREAM_REPLICAS", cls.stream_replicas),
            stream_duplicate_window_seconds=read.integer("STREAM_DUPLICATE_WINDOW_SECONDS", cls.stream_duplicate_window_seconds),
            stream_max_age_days=read.integer("STREAM_MAX_AGE_DAYS", cls.stream_max_age_days),
            relay_batch=read.integer("RELAY_BATCH", cls.relay_batch),
            worker_ack_wait_seconds=read.integer("WORKER_ACK_WAIT_SECONDS", cls.worker_ack_wait_seconds),
            subscription_buffer=read.integer("SUBSCRIPTION_BUFFER", cls.subscription_buffer),
            subscription_recheck_seconds=read.number("SUBSCRIPTION_RECHECK_SECONDS", cls.subscription_recheck_seconds),
            webhook_retry_hours=read.integer("WEBHOOK_RETRY_HOURS", cls.webhook_retry_hours),
            webhook_concurrency=read.integer("WEBHOOK_CONCURRENCY", cls.webhook_concurrency),
            ws_compression=bool(read.boolean("WS_COMPRESSION")),
            graphiql=read.boolean("GRAPHIQL"),
            introspection=read.boolean("INTROSPECTION"),
            max_query_depth=read.integer("MAX_QUERY_DEPTH", cls.max_query_depth),
            max_query_cost=read.integer("MAX_QUERY_COST", cls.max_query_cost),
            max_body_bytes=read.integer("MAX_BODY_BYTES", cls.max_body_bytes),
            rate_limit_per_minute=read.integer("RATE_LIMIT_PER_MINUTE", cls.rate_limit_per_minute),
            rate_limit_burst=read.integer("RATE_LIMIT_BURST", cls.rate_limit_burst),
            db_pool_min=read.integer("DB_POOL_MIN", cls.db_pool_min),
            db_pool_max=read.integer("DB_POOL_MAX", cls.db_pool_max),
            log_level=read.text("LOG_LEVEL", cls.log_level).upper(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse symmetric or unsigned token algorithms anywhere, and development defaults in production."""
        unsafe = [a for a in self.jwt_algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if unsafe or not self.jwt_algorithms:
            raise SettingsError(
                f"{PREFIX}JWT_ALGORITHMS must list asymmetric algorithms only, got {', '.join(self.jwt_algorithms)}"
            )
        if self.subscription_recheck_seconds < 0.1:
            # 0 would make every open subscription query the database in a busy loop.
            raise SettingsError(f"{PREFIX}SUBSCRIPTION_RECHECK_SECONDS must be at least 0.1, got {self.subscription_recheck_seconds}")
        if not self.production:
            return
        missing = [
            name
            for name, value in (
                ("DATABASE_URL", self.database_url),
                ("NATS_URL", self.nats_url),
                ("SIGNING_KEY or TAKEDOWN_SIGNING_KEY_FILE", self.signing_key_pem or self.signing_key_file),
                ("URL_KEYS", self.url_keys),
                ("URL_HMAC_KEY", self.url_hmac_key),
            )
            if not value
        ]
        if self.jwt_issuer == Settings.jwt_issuer:
            missing.append("JWT_ISSUER")
        if missing:
            raise SettingsError(
                "production needs " + ", ".join(PREFIX + m for m in missing) + " to be set"
            )
        if self.external_jwks_url and not self.external_jwks_url.startswith("https://"):
            raise SettingsError(f"{PREFIX}EXTERNAL_JWKS_URL must be https in production")


T = TypeVar("T", int, float)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name)
        return value if value not in (None, "") else None

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def integer(self, name: str, default: int) -> int:
        return self._non_negative(name, default, int, "a whole number")

    def number(self, name: str, default: float) -> float:
        return self._non_negative(name, default, float, "a number")

    def _non_negative(self, name: str, default: T, convert: Callable[[str], T], kind: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = convert(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be {kind}, got {raw!r}") from None
        if not 0 <= value < float("inf"):
            raise SettingsError(f"{PREFIX}{name} must not be negative or infinite, got {raw!r}")
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self._raw(name)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} must be true or false, got {raw!r}")

    def items(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def pairs(self, name: str) -> tuple[tuple[str, int], ...]:
        """NAME=hours,NAME=hours (for example BASELINE_CSAM=24,HARMFUL=72)."""
        raw = self._raw(name)
        if raw is None:
            return ()
        pairs = []
        for item in raw.split(","):
            key, _, value = item.partition("=")
            if not key.strip() or not value.strip().isdigit():
                raise SettingsError(f"{PREFIX}{name} is a list of NAME=hours, got {item.strip()!r}")
            pairs.append((key.strip().upper(), int(value)))
        return tuple(pairs)

    def path(self, name: str) -> Path | None:
        raw = self._raw(name)
        return None if raw is None else Path(raw)

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.text(name, default)
        if raw not in allowed:
            raise SettingsError(f"{PREFIX}{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return raw
