"""`me`: the viewer as the token and the database describe it."""

from __future__ import annotations

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from tests.conftest import Factory

ME = "{ me { subject roles organization { id name kind country } } }"


async def test_me_describes_the_token_holder(make: Factory) -> None:
    analyst = await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)
    result = await analyst.gql(ME)
    assert "errors" not in result
    me = result["data"]["me"]
    assert me["roles"] == ["MEMBER", "ANALYST"]
    assert me["subject"].startswith("user-")
    assert me["organization"] == {
        "id": analyst.org_id,
        "name": analyst.organization.name,
        "kind": "HOTLINE",
        "country": "NL",
    }
