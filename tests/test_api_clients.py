"""API clients: registration, listing and revocation by role, and the client-credentials grant."""

from __future__ import annotations

import httpx

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from tests.conftest import Factory, Member, error_codes

REGISTER = """
mutation($org: ID!, $name: String!, $roles: [Role!]!) {
  registerApiClient(organizationId: $org, name: $name, roles: $roles) {
    clientSecret
    client { id name clientId roles revokedAt organization { id } }
  }
}
"""
REVOKE = "mutation($id: ID!) { revokeApiClient(id: $id) { id revokedAt } }"
LIST = "{ apiClients { id name organization { id } } }"


async def register(member: Member, org_id: str, roles: list[str], name: str = "ticketing") -> dict:  # type: ignore[type-arg]
    return await member.gql(REGISTER, {"org": org_id, "name": name, "roles": roles})


async def token_for(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )


async def test_org_admin_registers_a_client_for_its_own_organization(org_admin: Member) -> None:
    result = await register(org_admin, org_admin.org_id, ["ANALYST", "MEMBER"])
    assert "errors" not in result, result
    payload = result["data"]["registerApiClient"]
    assert payload["client"]["roles"] == ["MEMBER", "ANALYST"]
    assert payload["client"]["organization"]["id"] == org_admin.org_id
    assert payload["client"]["revokedAt"] is None
    assert payload["client"]["clientId"].startswith("tdc_")
    assert len(payload["clientSecret"]) >= 40


async def test_the_secret_is_stored_only_as_a_digest(org_admin: Member, pool) -> None:  # type: ignore[no-untyped-def]
    payload = (await register(org_admin, org_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]
    async with pool.acquire() as conn:
        stored = await conn.fetchrow(
            "SELECT secret_hash::text AS h, row_to_json(c)::text AS row FROM api_clients c WHERE client_id = $1",
            payload["client"]["clientId"],
        )
    assert payload["clientSecret"] not in stored["row"]
    assert len(bytes.fromhex(stored["h"][2:])) == 32


async def test_org_admin_cannot_register_for_another_organization(org_admin: Member, make: Factory) -> None:
    other = await make.organization(K.COMPANY)
    result = await register(org_admin, make_gid(other), ["MEMBER"])
    assert error_codes(result) == ["FORBIDDEN"]


def make_gid(org) -> str:  # type: ignore[no-untyped-def]
    from api.domain.ids import to_global_id

    return to_global_id("Organization", org.id)


async def test_platform_admin_registers_for_any_organization(platform_admin: Member, make: Factory) -> None:
    company = await make.organization(K.COMPANY)
    result = await register(platform_admin, make_gid(company), ["ANALYST", "ORG_ADMIN"])
    assert "errors" not in result, result


async def test_no_one_grants_a_role_it_does_not_hold(org_admin: Member, platform_admin: Member) -> None:
    result = await register(org_admin, org_admin.org_id, ["PLATFORM_ADMIN"])
    assert error_codes(result) == ["FORBIDDEN"]
    assert "PLATFORM_ADMIN" in result["errors"][0]["message"]
    result = await register(org_admin, org_admin.org_id, ["ORGANIZER"])
    assert error_codes(result) == ["FORBIDDEN"]
    result = await register(platform_admin, platform_admin.org_id, ["PLATFORM_ADMIN"])
    assert "errors" not in result


async def test_members_and_analysts_cannot_manage_clients(make: Factory) -> None:
    analyst = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER)
    assert error_codes(await register(analyst, analyst.org_id, ["MEMBER"])) == ["FORBIDDEN"]
    assert error_codes(await analyst.gql(LIST)) == ["FORBIDDEN"]


async def test_bad_input_is_named(org_admin: Member) -> None:
    result = await register(org_admin, org_admin.org_id, [], name="x")
    assert error_codes(result) == ["BAD_USER_INPUT"] and "at least one role" in result["errors"][0]["message"]
    result = await register(org_admin, org_admin.org_id, ["MEMBER"], name="n" * 201)
    assert error_codes(result) == ["BAD_USER_INPUT"] and "at most 200" in result["errors"][0]["message"]
    result = await register(org_admin, org_admin.org_id, ["WIZARD"])
    assert error_codes(result) == ["BAD_USER_INPUT"] and "WIZARD" in result["errors"][0]["message"]
    result = await register(org_admin, "bm90LWFuLWlk", ["MEMBER"])
    assert error_codes(result) == ["BAD_USER_INPUT"]


async def test_unknown_organization_is_not_found(platform_admin: Member) -> None:
    from uuid import uuid4

    from api.domain.ids import to_global_id

    result = await register(platform_admin, to_global_id("Organization", uuid4()), ["MEMBER"])
    assert error_codes(result) == ["NOT_FOUND"]


async def test_listing_is_scoped_to_the_admins_organization(org_admin: Member, make: Factory, platform_admin: Member) -> None:
    other_admin = await make.member(K.COMPANY, Role.ORG_ADMIN, Role.MEMBER)
    mine = (await register(org_admin, org_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]["client"]["id"]
    theirs = (await register(other_admin, other_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]["client"]["id"]
    listed = {c["id"] for c in (await org_admin.gql(LIST))["data"]["apiClients"]}
    assert mine in listed and theirs not in listed
    everything = {c["id"] for c in (await platform_admin.gql(LIST))["data"]["apiClients"]}
    assert {mine, theirs} <= everything
    # node() follows the same rule: another organization's client does not exist for you.
    query = "query($id: ID!) { node(id: $id) { id ... on ApiClient { name } } }"
    assert (await org_admin.gql(query, {"id": theirs}))["data"]["node"] is None
    assert (await org_admin.gql(query, {"id": mine}))["data"]["node"]["id"] == mine


async def test_revoking_another_organizations_client_is_not_found(org_admin: Member, make: Factory) -> None:
    other_admin = await make.member(K.COMPANY, Role.ORG_ADMIN, Role.MEMBER)
    theirs = (await register(other_admin, other_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]["client"]["id"]
    assert error_codes(await org_admin.gql(REVOKE, {"id": theirs})) == ["NOT_FOUND"]


async def test_client_credentials_grant_issues_a_working_token(org_admin: Member, client: httpx.AsyncClient) -> None:
    payload = (await register(org_admin, org_admin.org_id, ["ANALYST", "MEMBER"]))["data"]["registerApiClient"]
    client_id = payload["client"]["clientId"]
    response = await token_for(client, client_id, payload["clientSecret"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    me = await client.post(
        "/graphql",
        json={"query": "{ me { subject roles organization { id } } }"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert me.json()["data"]["me"] == {
        "subject": f"client:{client_id}",
        "roles": ["MEMBER", "ANALYST"],
        "organization": {"id": org_admin.org_id},
    }
    # client_secret_post works as well as HTTP Basic
    posted = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": payload["clientSecret"]},
    )
    assert posted.status_code == 200


async def test_wrong_secret_unknown_client_and_wrong_grant(org_admin: Member, client: httpx.AsyncClient) -> None:
    payload = (await register(org_admin, org_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]
    client_id = payload["client"]["clientId"]
    wrong = await token_for(client, client_id, "not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = await token_for(client, "tdc_nobody", payload["clientSecret"])
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    grant = await client.post("/oauth/token", data={"grant_type": "password"}, auth=(client_id, payload["clientSecret"]))
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    as_json = await client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


async def test_revocation_stops_new_tokens_and_existing_ones(org_admin: Member, client: httpx.AsyncClient) -> None:
    payload = (await register(org_admin, org_admin.org_id, ["MEMBER"]))["data"]["registerApiClient"]
    client_id, secret = payload["client"]["clientId"], payload["clientSecret"]
    issued = (await token_for(client, client_id, secret)).json()["access_token"]
    before = await client.post("/graphql", json={"query": "{ me { subject } }"}, headers={"Authorization": f"Bearer {issued}"})
    assert before.status_code == 200 and before.json()["data"]["me"]["subject"]  # its organization's kind is now remembered

    revoked = await org_admin.gql(REVOKE, {"id": payload["client"]["id"]})
    assert revoked["data"]["revokeApiClient"]["revokedAt"] is not None

    refused = await token_for(client, client_id, secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    me = await client.post("/graphql", json={"query": "{ me { subject } }"}, headers={"Authorization": f"Bearer {issued}"})
    assert me.status_code == 401
    assert error_codes(me.json()) == ["UNAUTHENTICATED"]
