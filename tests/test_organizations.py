"""Organizations: the directory every party sees, created by platform administrators only."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from api.domain.ids import to_global_id
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.graphql.context import Loaders
from api.resources import Resources
from api.settings import Settings
from api.store.pool import create_pool
from tests.conftest import Factory, Member, error_codes

CREATE = """
mutation($name: String!, $kind: OrganizationKind!, $country: String) {
  createOrganization(name: $name, kind: $kind, country: $country) { id name kind country createdAt }
}
"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Organization { name kind } } }"


async def test_platform_admin_creates_an_organization(platform_admin: Member) -> None:
    result = await platform_admin.gql(CREATE, {"name": "  Hosting   Co  ", "kind": "COMPANY", "country": "de"})
    assert "errors" not in result, result
    created = result["data"]["createOrganization"]
    assert created["name"] == "Hosting Co"
    assert created["kind"] == "COMPANY" and created["country"] == "DE"
    node = await platform_admin.gql(NODE, {"id": created["id"]})
    assert node["data"]["node"] == {"id": created["id"], "name": "Hosting Co", "kind": "COMPANY"}


@pytest.mark.parametrize("roles", [(Role.ORG_ADMIN,), (Role.ANALYST, Role.MEMBER), (Role.ORGANIZER,)])
async def test_others_may_not_create_organizations(make: Factory, roles: tuple[Role, ...]) -> None:
    someone = await make.member(K.GOVERNMENT, *roles)
    result = await someone.gql(CREATE, {"name": f"Shadow {uuid4()}", "kind": "POLICE"})
    assert error_codes(result) == ["FORBIDDEN"]
    assert result["data"] is None


async def test_names_are_unique_regardless_of_case(platform_admin: Member) -> None:
    name = f"Unique {uuid4().hex[:8]}"
    assert "errors" not in await platform_admin.gql(CREATE, {"name": name, "kind": "HOTLINE"})
    again = await platform_admin.gql(CREATE, {"name": name.upper(), "kind": "HOTLINE"})
    assert error_codes(again) == ["CONFLICT"]
    assert "already exists" in again["errors"][0]["message"]


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"name": "x" * 201, "kind": "COMPANY"}, "at most 200"),
        ({"name": "   ", "kind": "COMPANY"}, "must not be empty"),
        ({"name": "Valid name", "kind": "COMPANY", "country": "Netherlands"}, "ISO 3166-1"),
        ({"name": "Valid name", "kind": "BAKERY"}, "BAKERY"),
        ({"name": 42, "kind": "COMPANY"}, "String"),
    ],
)
async def test_bad_input_says_what_is_wrong(platform_admin: Member, variables: dict, says: str) -> None:  # type: ignore[type-arg]
    result = await platform_admin.gql(CREATE, variables)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert says in result["errors"][0]["message"]


async def test_every_viewer_lists_organizations_by_kind(make: Factory) -> None:
    police = await make.organization(K.POLICE)
    company = await make.member(K.COMPANY)
    everyone = await company.gql("{ organizations { id kind } }")
    ids = {o["id"] for o in everyone["data"]["organizations"]}
    assert to_global_id("Organization", police.id) in ids and company.org_id in ids
    only_police = await company.gql("{ organizations(kind: POLICE) { kind } }")
    assert {o["kind"] for o in only_police["data"]["organizations"]} == {"POLICE"}


async def test_node_of_unknown_or_foreign_ids(make: Factory) -> None:
    viewer = await make.member(K.HOTLINE)
    assert (await viewer.gql(NODE, {"id": to_global_id("Organization", uuid4())}))["data"]["node"] is None
    assert (await viewer.gql(NODE, {"id": to_global_id("Spaceship", uuid4())}))["data"]["node"] is None
    malformed = await viewer.gql(NODE, {"id": "%%%not-an-id"})
    assert error_codes(malformed) == ["BAD_USER_INPUT"]


async def test_ids_are_opaque(make: Factory) -> None:
    viewer = await make.member(K.HOTLINE)
    me = await viewer.gql("{ me { organization { id } } }")
    opaque = me["data"]["me"]["organization"]["id"]
    assert str(viewer.organization.id) not in opaque
    assert not opaque.isdigit()


async def test_the_database_refuses_to_change_or_delete_an_organization(pool: asyncpg.Pool, make: Factory) -> None:
    """Processes remember organizations' kinds (they decide what a viewer sees): an edit behind
    their backs would go unseen, so the database allows none."""
    org = await make.organization(K.COMPANY)
    async with pool.acquire() as conn:
        for statement, args in (("UPDATE organizations SET kind = 'POLICE' WHERE id = $1", [org.id]),
                                ("DELETE FROM organizations WHERE id = $1", [org.id]),
                                ("TRUNCATE organizations CASCADE", [])):
            attempt = conn.transaction()
            await attempt.start()
            try:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
                    await conn.execute(statement, *args)
            finally:
                await attempt.rollback()  # were the guard ever gone, the shared test database stays whole
        assert await conn.fetchval("SELECT kind FROM organizations WHERE id = $1", org.id) == "COMPANY"


async def test_the_organization_loader_reads_known_organizations_without_the_database(make: Factory, settings: Settings) -> None:
    """Organizations never change, so one this process has read comes from memory: with the pool
    closed, a known organization still loads, and an unknown one needs the database."""
    known, unknown = await make.organization(K.COMPANY), await make.organization(K.POLICE)
    resources = Resources.build(settings)
    pool = resources.pool = await create_pool(settings)
    try:
        assert (await Loaders(resources).organization.load(known.id)) == known
        await pool.close()
        assert (await Loaders(resources).organization.load(known.id)) == known
        with pytest.raises(asyncpg.InterfaceError, match="closed|closing"):
            await Loaders(resources).organization.load(unknown.id)
    finally:
        await pool.close()
        await resources.http.aclose()
