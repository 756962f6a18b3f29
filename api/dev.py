"""`takedown dev`: the whole platform on one machine, from nothing, in one command.

When no URLs are configured it starts an embedded PostgreSQL and NATS
(JetStream) under the data folder; a second run reuses their data. It then
migrates, seeds demo data, prints the GraphiQL address and a ready token per
demo organization, and serves until Ctrl-C, when it stops what it started.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import ExitStack
from typing import Any

import uvicorn

from workers.registry import run_workers

from . import logs
from .app import create_app
from .auth.keys import issue_token, load_signing_key
from .cli import DATABASE, DEV_ENV, ensure_database, migrate_database
from .domain.ids import to_global_id
from .protect import load_url_protector
from .seed import seed
from .settings import Settings
from .store.pool import pool_for


async def run_dev(settings: Settings, *, host: str, port: int) -> int:
    logs.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        settings, embedded_postgres = _start_embedded(settings, stack)
        if embedded_postgres:
            await ensure_database(_admin_dsn(settings.database_url), DATABASE)
        await migrate_database(settings.database_url)
        async with pool_for(settings) as pool:
            seeded = await seed(pool, load_url_protector(settings))
        env_file = settings.data_dir / DEV_ENV
        env_file.write_text(f"TAKEDOWN_DATABASE_URL={settings.database_url}\nTAKEDOWN_NATS_URL={settings.nats_url}\n")
        stack.callback(lambda: env_file.unlink(missing_ok=True))

        signing_key = load_signing_key(settings)
        tokens = {
            organization.name: {
                "id": to_global_id("Organization", organization.id),
                "kind": organization.kind.value,
                "roles": [r.value for r in demo.roles],
                "token": issue_token(
                    signing_key,
                    settings,
                    subject=f"demo:{organization.kind.value.lower()}",
                    organization_id=str(organization.id),
                    roles=[r.value for r in demo.roles],
                    ttl_seconds=12 * 3600,
                ),
            }
            for organization, demo in seeded
        }
        tokens_file = settings.data_dir / "dev-tokens.json"
        tokens_file.write_text(json.dumps(tokens, indent=2))
        os.chmod(tokens_file, 0o600)
        _print_banner(host, port, tokens, tokens_file)

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host=host,
                port=port,
                log_config=None,
                lifespan="on",
                ws_per_message_deflate=settings.ws_compression,
            )
        )
        # All workers (relay, webhooks, deadlines) run in this process beside the API.
        stop_workers = asyncio.Event()
        workers = asyncio.create_task(run_workers(settings, ["all"], stop_workers), name="workers")
        try:
            await server.serve()
        finally:
            stop_workers.set()
            await asyncio.wait_for(workers, timeout=30)
    return 0


def _start_embedded(settings: Settings, stack: ExitStack) -> tuple[Settings, bool]:
    from infra.stack import EmbeddedNats, EmbeddedPostgres

    database_url, nats_url = settings.database_url, settings.nats_url
    if not database_url:
        postgres = EmbeddedPostgres(settings.data_dir / "postgres")
        postgres.start()
        stack.callback(postgres.stop)
        database_url = postgres.dsn(DATABASE)
    if not nats_url:
        nats = EmbeddedNats(settings.data_dir / "nats")
        nats_url = nats.start()
        stack.callback(nats.stop)
    embedded = not settings.database_url
    return settings.with_overrides(database_url=database_url, nats_url=nats_url), embedded


def _admin_dsn(dsn: str) -> str:
    base, _, rest = dsn.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/postgres" + (f"?{query}" if query else "")


def _print_banner(host: str, port: int, tokens: dict[str, dict[str, Any]], tokens_file: object) -> None:
    print("\nTakedown Exchange is running.", flush=True)
    print(f"  GraphiQL:  http://{host}:{port}/graphql", flush=True)
    print(f"  Health:    http://{host}:{port}/healthz   Ready: http://{host}:{port}/readyz\n", flush=True)
    print("Demo tokens (valid 12 hours; also in " + str(tokens_file) + "):", flush=True)
    for name, entry in tokens.items():
        print(f"\n  {name} ({entry['kind']}; roles {', '.join(entry['roles'])})", flush=True)
        print(f"  {entry['token']}", flush=True)
    print(
        f'\nTry: curl -s http://{host}:{port}/graphql -H "Authorization: Bearer <token>" '
        "-H 'Content-Type: application/json' -d '{\"query\":\"{ me { subject roles organization { name kind } } }\"}'\n",
        flush=True,
    )
