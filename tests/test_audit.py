"""The audit log: written with every change, append-only in the database, tamper-evident."""

from __future__ import annotations

import asyncpg
import pytest

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from api.services.audit import chain_intact
from api.services.organizations import create_organization
from api.store import audit as audit_store
from api.store.pool import create_pool
from tests.conftest import Factory, Member, Services, app_client, error_codes, fresh_database

LOG = """
query($object: ID) {
  auditLog(objectId: $object, first: 50) {
    edges { cursor node { action subject objectId chainHash organization { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREATE = 'mutation($name: String!) { createOrganization(name: $name, kind: COMPANY) { id } }'


async def test_changes_are_audited_with_who_did_them(platform_admin: Member) -> None:
    created = await platform_admin.gql(CREATE, {"name": "Audited Hosting " + platform_admin.org_id[-6:]})
    org_id = created["data"]["createOrganization"]["id"]
    entries = (await platform_admin.gql(LOG, {"object": org_id}))["data"]["auditLog"]["edges"]
    assert [e["node"]["action"] for e in entries] == ["organization.create"]
    node = entries[0]["node"]
    assert node["organization"]["id"] == platform_admin.org_id
    assert node["subject"].startswith("user-")
    assert len(node["chainHash"]) == 64


async def test_org_admin_sees_only_its_own_organizations_entries(platform_admin: Member, make: Factory) -> None:
    admin = await make.member(K.COMPANY, Role.ORG_ADMIN, Role.MEMBER)
    registered = await admin.gql(
        'mutation($o: ID!) { registerApiClient(organizationId: $o, name: "bot", roles: [MEMBER]) { client { id } } }',
        {"o": admin.org_id},
    )
    client_id = registered["data"]["registerApiClient"]["client"]["id"]
    await platform_admin.gql(CREATE, {"name": "Elsewhere " + admin.org_id[-6:]})

    own = (await admin.gql(LOG, {}))["data"]["auditLog"]["edges"]
    assert own and {e["node"]["organization"]["id"] for e in own} == {admin.org_id}
    assert client_id in {e["node"]["objectId"] for e in own}
    everything = (await platform_admin.gql(LOG, {"object": client_id}))["data"]["auditLog"]["edges"]
    assert [e["node"]["action"] for e in everything] == ["api_client.register"]


async def test_members_may_not_read_the_audit_log(make: Factory) -> None:
    analyst = await make.member(K.POLICE, Role.ANALYST, Role.MEMBER)
    assert error_codes(await analyst.gql(LOG, {})) == ["FORBIDDEN"]
    assert error_codes(await analyst.gql("{ auditChainIntact }")) == ["FORBIDDEN"]


async def test_paging_is_stable(platform_admin: Member) -> None:
    for i in range(3):
        await platform_admin.gql(CREATE, {"name": f"Paged {i} {platform_admin.org_id[-8:]}"})
    query = "query($after: String) { auditLog(first: 2, after: $after) { edges { cursor } pageInfo { hasNextPage endCursor } } }"
    first = (await platform_admin.gql(query, {}))["data"]["auditLog"]
    second = (await platform_admin.gql(query, {"after": first["pageInfo"]["endCursor"]}))["data"]["auditLog"]
    assert first["pageInfo"]["hasNextPage"]
    assert not {e["cursor"] for e in first["edges"]} & {e["cursor"] for e in second["edges"]}
    bad = await platform_admin.gql(query, {"after": "bm90LWEtY3Vyc29y"})
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_the_database_refuses_to_change_or_delete_entries(pool: asyncpg.Pool, platform_admin: Member) -> None:
    await platform_admin.gql(CREATE, {"name": "Immutable " + platform_admin.org_id[-8:]})
    async with pool.acquire() as conn:
        for statement in ("UPDATE audit_log SET subject = 'nobody'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)


async def test_tampering_breaks_the_chain(services: Services, settings, signing_key_pem) -> None:  # type: ignore[no-untyped-def]
    """A fresh database owns its whole chain, so tampering here cannot disturb other tests."""
    dsn = await fresh_database(services)
    isolated = settings.with_overrides(database_url=dsn)
    async with app_client(isolated) as http:
        pool = await create_pool(isolated)
        try:
            make = Factory(pool, isolated, http)
            admin = await make.member(K.GOVERNMENT, Role.PLATFORM_ADMIN)
            for i in range(5):
                await admin.gql(CREATE, {"name": f"Chained {i}"})
            assert (await admin.gql("{ auditChainIntact }"))["data"]["auditChainIntact"] is True

            async with pool.acquire() as conn, conn.transaction():
                # Only a superuser bypassing triggers can do this: exactly the insider the chain is for.
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute("UPDATE audit_log SET subject = 'someone-else' WHERE seq = 3")
            assert (await admin.gql("{ auditChainIntact }"))["data"]["auditChainIntact"] is False

            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(
                    "UPDATE audit_log SET chain_hash = audit_log_canonical(prev_hash, at, organization_id, subject, action, object_id) WHERE seq = 3"
                )
            # Re-hashing the tampered row still breaks the link to the next entry.
            assert (await admin.gql("{ auditChainIntact }"))["data"]["auditChainIntact"] is False
        finally:
            await pool.close()


async def test_deleting_an_entry_breaks_the_chain(services: Services, settings) -> None:  # type: ignore[no-untyped-def]
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        organizations = [await create_organization(pool, None, name=f"Link {i}", kind=K.COMPANY) for i in range(4)]
        auditor = Viewer("auditor", organizations[0].id, K.COMPANY, frozenset({Role.PLATFORM_ADMIN}))
        assert await chain_intact(pool, auditor)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("DELETE FROM audit_log WHERE seq = 2")
        assert not await chain_intact(pool, auditor)
    finally:
        await pool.close()


async def test_a_batch_of_entries_is_chained_in_the_order_given(services: Services, settings) -> None:  # type: ignore[no-untyped-def]
    """append_many writes a thousand entries in one statement; each still links to the one before."""
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        org = await create_organization(pool, None, name="Batch", kind=K.HOTLINE)
        auditor = Viewer("auditor", org.id, K.HOTLINE, frozenset({Role.PLATFORM_ADMIN}))
        object_ids = [f"obj-{i:04d}" for i in range(1000)]
        async with pool.acquire() as conn, conn.transaction():
            await audit_store.append_many(conn, auditor, "batch.test", object_ids)
        async with pool.acquire() as conn:
            written = [r["object_id"] for r in await conn.fetch("SELECT object_id FROM audit_log WHERE action = 'batch.test' ORDER BY seq")]
        assert written == object_ids
        assert await chain_intact(pool, auditor)
    finally:
        await pool.close()
