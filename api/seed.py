"""Demo data: the parties of the February 2018 public-private conference, one of each kind and several companies.

Idempotent: seeding twice creates nothing new, so `takedown dev` can seed on every start.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .domain.errors import Conflict
from .domain.organizations import Organization, OrganizationKind, Role
from .protect import UrlProtector
from .seed_conference import seed_conference
from .seed_notices import seed_notices
from .services.organizations import create_organization
from .store import organizations as store

K = OrganizationKind
ALL_ROLES = (Role.MEMBER, Role.ANALYST, Role.ORG_ADMIN)


@dataclass(frozen=True)
class DemoOrganization:
    name: str
    kind: OrganizationKind
    roles: tuple[Role, ...]


DEMO = (
    DemoOrganization("Ministry of Justice and Security", K.GOVERNMENT, (*ALL_ROLES, Role.ORGANIZER, Role.PLATFORM_ADMIN)),
    DemoOrganization("Authority for Online Child Sexual Abuse Material", K.REGULATOR, ALL_ROLES),
    DemoOrganization("National Police", K.POLICE, ALL_ROLES),
    DemoOrganization("Public Prosecution Service", K.PROSECUTOR, ALL_ROLES),
    DemoOrganization("Online Child Abuse Expertise Agency", K.HOTLINE, ALL_ROLES),
    DemoOrganization("NLHost B.V.", K.COMPANY, ALL_ROLES),
    DemoOrganization("Cloudbase Hosting", K.COMPANY, ALL_ROLES),
    DemoOrganization("FastPixel Media", K.COMPANY, ALL_ROLES),
    DemoOrganization("Polder Datacenter", K.COMPANY, ALL_ROLES),
)


async def seed(pool: asyncpg.Pool, protector: UrlProtector | None = None) -> list[tuple[Organization, DemoOrganization]]:
    """Organizations of every kind; with a URL protector also the demo notices (api/seed_notices.py)."""
    seeded = []
    for demo in DEMO:
        try:
            organization = await create_organization(pool, None, name=demo.name, kind=demo.kind, country="NL")
        except Conflict:
            async with pool.acquire() as conn:
                found = await store.by_name(conn, demo.name)
            assert found is not None
            organization = found
        seeded.append((organization, demo))
    if protector is not None:
        await seed_notices(pool, protector, [organization for organization, _ in seeded])
    await seed_conference(pool, [organization for organization, _ in seeded])
    return seeded
