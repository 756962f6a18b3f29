"""Who is who: organization kinds, roles, and the viewer acting for an organization."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from .errors import BadUserInput

NAME_MAX = 200
COUNTRY = re.compile(r"^[A-Z]{2}$")


class OrganizationKind(StrEnum):
    GOVERNMENT = "GOVERNMENT"
    REGULATOR = "REGULATOR"
    POLICE = "POLICE"
    PROSECUTOR = "PROSECUTOR"
    HOTLINE = "HOTLINE"
    COMPANY = "COMPANY"


class Role(StrEnum):
    MEMBER = "MEMBER"
    ANALYST = "ANALYST"
    ORG_ADMIN = "ORG_ADMIN"
    ORGANIZER = "ORGANIZER"
    PLATFORM_ADMIN = "PLATFORM_ADMIN"


@dataclass(frozen=True)
class Organization:
    id: UUID
    name: str
    kind: OrganizationKind
    country: str | None
    created_at: datetime


@dataclass(frozen=True)
class Viewer:
    """An authenticated principal: a subject acting for one organization with some roles.

    `client_id` is set when the subject is a registered API client, so that its
    revocation takes effect on the next request.
    """

    subject: str
    organization_id: UUID
    organization_kind: OrganizationKind
    roles: frozenset[Role]
    client_id: str | None = None
    expires_at: datetime | None = None  # the token's expiry; None for the platform's own actors

    def has(self, role: Role) -> bool:
        return role in self.roles


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reject_control_characters(value: str, what: str) -> None:
    """PostgreSQL refuses NUL in text; other control characters have no business in shared records."""
    if CONTROL.search(value):
        raise BadUserInput(f"{what} must not contain control characters")


def clean_name(value: str, *, what: str = "name", limit: int = NAME_MAX) -> str:
    """Trim and bound a display name; names are shown to every party, so keep them tidy."""
    reject_control_characters(value, what)
    name = " ".join(value.split())
    if not name:
        raise BadUserInput(f"{what} must not be empty")
    if len(name) > limit:
        raise BadUserInput(f"{what} must be at most {limit} characters, got {len(name)}")
    return name


def clean_country(value: str | None) -> str | None:
    if value is None:
        return None
    country = value.strip().upper()
    if not COUNTRY.match(country):
        raise BadUserInput(f"country must be an ISO 3166-1 alpha-2 code such as NL, got {value[:10]!r}")
    return country


def parse_roles(values: list[str] | str) -> frozenset[Role]:
    items = values.split(",") if isinstance(values, str) else values
    roles: set[Role] = set()
    for item in items:
        name = item.strip().upper()
        if not name:
            continue
        try:
            roles.add(Role(name))
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise BadUserInput(f"unknown role {item.strip()[:40]!r}; roles are {allowed}") from None
    return frozenset(roles)
