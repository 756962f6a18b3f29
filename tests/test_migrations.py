"""Migrations: applied in order, each once, recorded; an edited migration is refused."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest

from api.cli import ensure_database
from api.store.migrations import MigrationError, discover, migrate
from tests.conftest import Services, database_dsn


async def empty_database(services: Services) -> asyncpg.Connection:
    name = f"takedown_migrate_{secrets.token_hex(4)}"
    await ensure_database(services.admin_dsn, name)
    return await asyncpg.connect(database_dsn(services.admin_dsn, name))


async def test_applies_every_migration_once(services: Services) -> None:
    conn = await empty_database(services)
    try:
        applied = await migrate(conn)
        assert applied == [m.name for m in discover()]
        assert await migrate(conn) == []
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"organizations", "api_clients", "audit_log", "schema_migrations"} <= tables
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert recorded == len(applied)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(services: Services, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    conn = await empty_database(services)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('good') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('half') IS NULL")
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 1
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(services: Services, tmp_path: Path) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int);")
    conn = await empty_database(services)
    try:
        await migrate(conn, tmp_path)
        migration.write_text("CREATE TABLE first (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, tmp_path)
    finally:
        await conn.close()


def test_file_names_are_numbered(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="0001_some_name.sql"):
        discover(tmp_path)
