"""Enforcement commands and reads: the regulator's administrative approach to providers that do not remove.

Each command owns one transaction: visibility (NOT_FOUND), policy (FORBIDDEN),
version (CONFLICT), lifecycle (CONFLICT), then state, history, event, audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain import events as domain_events
from ..domain.access import Action, Relation, Tier
from ..domain.enforcement import (
    MAX_NOTICES,
    EnforcementCase,
    EnforcementStatus,
    EnforcementStep,
    Step,
    apply,
    check_version,
)
from ..domain.errors import BadUserInput, Conflict, NotFound
from ..domain.ids import to_global_id, uuid7_at
from ..domain.notices import screen_note
from ..domain.organizations import OrganizationKind, Viewer
from ..store import enforcement as store
from ..store import events
from ..store import notices as notices_store
from ..store import organizations as organizations_store
from ..store.idempotency import IdempotencyKey, claim_keys
from .recording import record_creation

MAX_PAGE = 500
IDEMPOTENCY_KEY_MAX = 200
ACTION_FOR = {
    Step.WARN: Action.SEND_WARNING,
    Step.ORDER: Action.ISSUE_ORDER,
    Step.OBJECT: Action.FILE_OBJECTION,
    Step.COMPLY: Action.RECORD_COMPLIANCE,
    Step.PENALIZE: Action.IMPOSE_PENALTY,
    Step.CLOSE: Action.CLOSE_ENFORCEMENT_CASE,
}


@dataclass(frozen=True)
class VisibleCase:
    case: EnforcementCase
    tier: Tier


def visible(viewer: Viewer, case: EnforcementCase | None) -> VisibleCase | None:
    if case is None:
        return None
    tier = access.enforcement_tier(viewer, provider_id=case.provider_id)
    return VisibleCase(case, tier) if tier is not None else None


def _key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise BadUserInput(f"idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return key


async def open_case(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    provider_id: UUID,
    notice_ids: Sequence[UUID],
    note: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> EnforcementCase:
    access.require(viewer, Action.OPEN_ENFORCEMENT_CASE, Relation(provider_id=provider_id))
    screened = screen_note(note)
    key = _key(idempotency_key)
    unique_ids = list(dict.fromkeys(notice_ids))
    if not 1 <= len(unique_ids) <= MAX_NOTICES:
        raise BadUserInput(f"a case needs between 1 and {MAX_NOTICES} notices of its provider")
    async with pool.acquire() as conn, conn.transaction():
        keyed = [IdempotencyKey(key, 0)] if key else []
        earlier = await claim_keys(conn, viewer, "openEnforcementCase", keyed)
        if earlier:
            found = (await store.by_ids(conn, [next(iter(earlier.values())).result_id]))[0]
            if found is None:
                raise Conflict("the case recorded for this idempotency key no longer exists")
            return found
        provider = await organizations_store.get(conn, provider_id)
        if provider is None:
            raise NotFound("providerId: no organization with that id")
        if provider.kind is not OrganizationKind.COMPANY:
            raise BadUserInput(f"providerId: enforcement is against a COMPANY, not {provider.kind.value}")
        notices = await notices_store.by_ids(conn, unique_ids)
        for index, notice in enumerate(notices):
            if notice is None or access.notice_tier(viewer, reporter_id=notice.reporter_id, provider_id=notice.provider_id) is None:
                raise NotFound(f"noticeIds[{index}]: no Notice with that id")
            if notice.provider_id != provider_id:
                raise BadUserInput(f"noticeIds[{index}]: notice {notice.reference} is not a notice of this provider")
        case = await store.insert(conn, uuid7_at(now), provider_id, unique_ids, now)
        await store.insert_step(conn, case.id, EnforcementStep(now, case.status, viewer.organization_kind, screened))
        await record_creation(
            conn, viewer, operation="openEnforcementCase", keyed=keyed, created=case.id,
            emitted=[domain_events.enforcement_event(case, "opened", at=now, actor_kind=viewer.organization_kind)],
            action="enforcement.open", object_id=to_global_id("EnforcementCase", case.id),
        )
    return case


async def act(
    pool: asyncpg.Pool,
    viewer: Viewer,
    case_id: UUID,
    step: Step,
    *,
    now: datetime,
    note: str | None = None,
    expected_version: int | None = None,
    order_due_at: datetime | None = None,
    penalty_euros: int | None = None,
) -> EnforcementCase:
    screened = screen_note(note)
    async with pool.acquire() as conn, conn.transaction():
        case = await store.get_for_update(conn, case_id)
        if visible(viewer, case) is None or case is None:
            raise NotFound("no EnforcementCase with that id")
        access.require(viewer, ACTION_FOR[step], Relation(provider_id=case.provider_id))
        check_version(case, expected_version)
        moved = apply(
            case,
            step,
            actor_kind=viewer.organization_kind,
            now=now,
            note=screened,
            order_due_at=order_due_at,
            penalty_euros=penalty_euros,
        )
        await store.update(conn, moved.case, now)
        await store.insert_step(conn, case.id, moved.step)
        await events.append_with_audit(
            conn,
            [
                domain_events.enforcement_event(
                    moved.case, step.value, at=now, actor_kind=viewer.organization_kind, previous=moved.previous
                )
            ],
            viewer,
            f"enforcement.{step.value}",
            [to_global_id("EnforcementCase", case.id)],
        )
    return moved.case


@dataclass(frozen=True)
class CasePage:
    items: list[VisibleCase]
    has_next: bool
    total: int


async def list_cases(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    provider_id: UUID | None,
    statuses: Sequence[EnforcementStatus],
    first: int,
    after: UUID | None,
) -> CasePage:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}, got {first}")
    only = access.enforcement_scope(viewer)
    async with pool.acquire() as conn:
        rows, total = await store.page(
            conn, only_provider=only, provider_id=provider_id, statuses=statuses, after=after, limit=first + 1
        )
    items = [v for c in rows[:first] if (v := visible(viewer, c)) is not None]
    return CasePage(items, len(rows) > first, total)
