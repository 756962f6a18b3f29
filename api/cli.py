"""The `takedown` command: the server-side operator's tool and the dev stack.

Commands run on the server are trusted (they hold the database URL and the
signing key), so `org create` and `token` do not go through the access policy;
what they do is still written to the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from .auth.keys import issue_token, load_signing_key
from .domain.errors import DomainError
from .domain.ids import from_global_id, to_global_id
from .domain.organizations import OrganizationKind, parse_roles
from .settings import Settings, SettingsError

DEV_ENV = "dev.env"
DATABASE = "takedown"


def _settings() -> Settings:
    settings = Settings.from_env()
    if settings.database_url and settings.nats_url:
        return settings
    # A running `takedown dev` leaves its URLs here, so other commands reach its stack.
    path = settings.data_dir / DEV_ENV
    if path.exists():
        found = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return settings.with_overrides(
            database_url=settings.database_url or found.get("TAKEDOWN_DATABASE_URL", ""),
            nats_url=settings.nats_url or found.get("TAKEDOWN_NATS_URL", ""),
        )
    return settings


def _need_database(settings: Settings) -> str:
    if not settings.database_url:
        raise SettingsError("set TAKEDOWN_DATABASE_URL, or start `takedown dev` (its stack is then used)")
    return settings.database_url


async def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[Any]]) -> Any:
    from .store.pool import pool_for

    async with pool_for(settings, _need_database(settings)) as pool:
        return await work(pool)


async def migrate_database(dsn: str) -> list[str]:
    from .store.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate_database(_need_database(_settings())))
    print("applied: " + ", ".join(applied) if applied else "the database is up to date")
    return 0


def serve_app() -> Any:
    """The API as `takedown serve` runs it, built in the process that serves it: with --workers,
    uvicorn calls this in each worker process (an app factory), so each has its own pool,
    NATS connection and live hub, as separate servers behind a load balancer would."""
    from . import logs
    from .app import create_app

    settings = _settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    _tune_garbage_collection()
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()  # a bad configuration fails here, once, before any worker starts
    if args.workers < 1:
        raise SettingsError(f"--workers must be at least 1, got {args.workers}")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "proxy_headers": True,
        "ws_per_message_deflate": settings.ws_compression,
    }
    if args.workers > 1:
        # Built once here first: the whole configuration is checked (a worker failing at start
        # would be respawned for ever), development keys are created once (not raced by the
        # workers), and logging is set up for the supervisor's own messages.
        serve_app()
        uvicorn.run("api.cli:serve_app", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(serve_app(), **options)
    return 0


# A young-generation collection every 20,000 net allocations instead of every 700. A request
# leaves nothing for the collector (tests/test_request_garbage.py): reference counting frees all of
# its objects once it is answered, so a collection only walks the objects of requests in flight,
# and frees nothing. At 700 nearly every page set one off. At 3,000, 32 concurrent pages still set
# off ~100 a second, with a middle-generation one every ~0.2 s and a full one every ~1.5 s: 5-6% of
# the API's time (the collector's own callbacks, in the served process). At 20,000, 0-6 in a 7 s
# window, the longest 6.5 ms there. A collection walks the young objects of every request in flight,
# so its pause grows with their number and size, not with this threshold: in a review's in-process
# run of 32 pages at a time the longest were 17-23 ms at 20,000, as at 3,000, with a quarter of the
# collector's total time. Set by `takedown serve` only: `takedown dev` and the tests run with
# Python's defaults.
YOUNG_GENERATION_THRESHOLD = 20_000


def _tune_garbage_collection() -> None:
    """Move what exists now (modules, the schema, the app: ~100,000 objects, all living as long as
    the process) out of the garbage collector's sight, and collect the young generation less often.
    Without the freeze every full collection walks them all: a reportNotices call with 1000 inputs
    triggers several, and took 0.60 s instead of 0.48 s (`python -m bench.run --quick --only ingest`)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def cmd_org_create(args: argparse.Namespace) -> int:
    from .services.organizations import create_organization

    kind = OrganizationKind(args.kind.upper()) if args.kind.upper() in OrganizationKind.__members__ else None
    if kind is None:
        raise SettingsError(f"--kind must be one of {', '.join(OrganizationKind.__members__)}")
    organization = asyncio.run(
        _with_pool(
            _settings(),
            lambda pool: create_organization(pool, None, name=args.name, kind=kind, country=args.country),
        )
    )
    print(to_global_id("Organization", organization.id))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .store import organizations

    settings = _settings()
    organization_id = _organization_key(args.org)

    async def exists(pool: asyncpg.Pool) -> bool:
        async with pool.acquire() as conn:
            return await organizations.get(conn, organization_id) is not None

    if not asyncio.run(_with_pool(settings, exists)):
        raise SettingsError(f"no organization with id {args.org}")
    roles = parse_roles(args.roles)
    print(
        issue_token(
            load_signing_key(settings),
            settings,
            subject=args.subject,
            organization_id=str(organization_id),
            roles=[r.value for r in roles],
            ttl_seconds=args.ttl,
        )
    )
    return 0


def _organization_key(value: str) -> Any:
    from uuid import UUID

    try:
        return UUID(value)
    except ValueError:
        type_name, key = from_global_id(value)
        if type_name != "Organization":
            raise SettingsError(f"{value} is not an organization id") from None
        return key


def cmd_seed(args: argparse.Namespace) -> int:
    from .protect import load_url_protector
    from .seed import seed

    settings = _settings()
    protector = load_url_protector(settings)
    seeded = asyncio.run(_with_pool(settings, lambda pool: seed(pool, protector)))
    for organization, _ in seeded:
        print(f"{to_global_id('Organization', organization.id)}  {organization.kind.value:<10}  {organization.name}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.registry import main as run_workers
    from workers.registry import resolve

    from . import logs

    settings = _settings()
    _need_database(settings)
    if not settings.nats_url:
        raise SettingsError("set TAKEDOWN_NATS_URL, or start `takedown dev` (its stack is then used)")
    resolve(args.names)  # an unknown name is an error before anything starts
    logs.configure(settings.log_level)
    return run_workers(settings, args.names)


def cmd_dev(args: argparse.Namespace) -> int:
    from .dev import run_dev

    try:
        return asyncio.run(run_dev(Settings.from_env(), host=args.host, port=args.port))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a developer stops it; everything started was stopped on the way out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="takedown", description="Takedown Exchange")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="embedded PostgreSQL and NATS, migrations, demo data, the API")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(run=cmd_dev)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(run=cmd_migrate)

    worker = sub.add_parser("worker", help="run workers: relay, webhooks, deadlines, victim-alerts (or all); SIGTERM stops them cleanly")
    worker.add_argument("names", nargs="*", default=["all"], metavar="NAME", help="worker names, or all (the default)")
    worker.set_defaults(run=cmd_worker)

    serve = sub.add_parser("serve", help="run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API processes sharing the port (one per core)")
    serve.set_defaults(run=cmd_serve)

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_command", required=True)
    create = org.add_parser("create", help="create an organization; prints its id")
    create.add_argument("--name", required=True)
    create.add_argument("--kind", required=True, help=", ".join(OrganizationKind.__members__))
    create.add_argument("--country")
    create.set_defaults(run=cmd_org_create)

    token = sub.add_parser("token", help="print a signed access token")
    token.add_argument("--org", required=True, help="organization id")
    token.add_argument("--roles", required=True, help="comma-separated, e.g. MEMBER,ANALYST")
    token.add_argument("--subject", default="takedown-cli")
    token.add_argument("--ttl", type=int, default=None, help="seconds")
    token.set_defaults(run=cmd_token)

    sub.add_parser("seed", help="load demo data").set_defaults(run=cmd_seed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SettingsError, DomainError, ValueError) as error:
        message = error.message if isinstance(error, DomainError) else str(error)
        print(f"takedown: {message}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"takedown: cannot reach a backing service: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
