"""Conference commands and reads: conferences, agreements, commitments, with their events and history.

Visibility follows the conference (ACCESS.md): its organizer, its participants,
every GOVERNMENT and REGULATOR organization. Anyone else gets NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain import events as domain_events
from ..domain.access import Action, Relation
from ..domain.conferences import (
    MAX_PARTIES,
    Agreement,
    AgreementStatus,
    Commitment,
    CommitmentStatus,
    CommitmentUpdate,
    Conference,
    Kpi,
    Measures,
    check_agreement_version,
    check_commitment_version,
    clean_description,
    clean_title,
    set_agreement_status,
    today,
    update_commitment,
)
from ..domain.errors import BadUserInput, Conflict, Forbidden, NotFound
from ..domain.ids import to_global_id, uuid7_at
from ..domain.notices import screen_note
from ..domain.organizations import Viewer
from ..store import conferences as store
from ..store import events
from ..store import organizations as organizations_store
from ..store.idempotency import IdempotencyKey, claim_keys
from .notices import PLATFORM
from .recording import record_creation

IDEMPOTENCY_KEY_MAX = 200


def sees(viewer: Viewer, conference: Conference | None) -> bool:
    return conference is not None and access.sees_conference(
        viewer, organizer_id=conference.organizer_id, participant_ids=frozenset(conference.participant_ids)
    )


def relation(conference: Conference, owner_id: UUID | None = None) -> Relation:
    return Relation(
        organizer_id=conference.organizer_id, participant_ids=frozenset(conference.participant_ids), owner_id=owner_id
    )


def _key(key: str | None) -> list[IdempotencyKey]:
    if key is None:
        return []
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise BadUserInput(f"idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return [IdempotencyKey(key, 0)]


async def _earlier(conn: asyncpg.Connection, viewer: Viewer, operation: str, keyed: list[IdempotencyKey]) -> UUID | None:
    earlier = await claim_keys(conn, viewer, operation, keyed)
    return next(iter(earlier.values())).result_id if earlier else None


async def _check_organizations(conn: asyncpg.Connection, ids: Sequence[UUID], field: str) -> None:
    for index, found in enumerate(await organizations_store.by_ids(conn, list(ids))):
        if found is None:
            raise NotFound(f"{field}[{index}]: no organization with that id")


def _unique(ids: Sequence[UUID], field: str) -> tuple[UUID, ...]:
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > MAX_PARTIES:
        raise BadUserInput(f"{field} holds at most {MAX_PARTIES} organizations")
    return unique


async def _visible_conference(conn: asyncpg.Connection, viewer: Viewer, conference_id: UUID) -> Conference:
    conference = (await store.conferences_by_ids(conn, [conference_id]))[0]
    if conference is None or not sees(viewer, conference):
        raise NotFound("no Conference with that id")
    return conference


# ---------------------------------------------------------------- commands


async def create_conference(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    title: str,
    held_on: date,
    participant_ids: Sequence[UUID],
    idempotency_key: str | None,
    now: datetime,
) -> Conference:
    access.require(viewer, Action.CREATE_CONFERENCE)
    clean = clean_title(title)
    participants = tuple(p for p in _unique(participant_ids, "participantIds") if p != viewer.organization_id)
    keyed = _key(idempotency_key)
    async with pool.acquire() as conn, conn.transaction():
        if (earlier := await _earlier(conn, viewer, "createConference", keyed)) is not None:
            found = (await store.conferences_by_ids(conn, [earlier]))[0]
            if found is None:
                raise Conflict("the conference recorded for this idempotency key no longer exists")
            return found
        await _check_organizations(conn, participants, "participantIds")
        conference = Conference(uuid7_at(now), clean, held_on, viewer.organization_id, participants, now)
        await store.insert_conference(conn, conference)
        await record_creation(
            conn, viewer, operation="createConference", keyed=keyed, created=conference.id,
            emitted=[domain_events.conference_created(conference, actor_kind=viewer.organization_kind)],
            action="conference.create", object_id=to_global_id("Conference", conference.id),
        )
    return conference


async def create_agreement(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    conference_id: UUID,
    title: str,
    description: str,
    party_ids: Sequence[UUID],
    idempotency_key: str | None,
    now: datetime,
    status: AgreementStatus = AgreementStatus.DRAFT,
) -> Agreement:
    clean = clean_title(title)
    text = clean_description(description)
    parties = _unique(party_ids, "partyIds")
    if not parties:
        raise BadUserInput("partyIds must name at least one party")
    keyed = _key(idempotency_key)
    async with pool.acquire() as conn, conn.transaction():
        conference = await _visible_conference(conn, viewer, conference_id)
        access.require(viewer, Action.CREATE_AGREEMENT, relation(conference))
        if (earlier := await _earlier(conn, viewer, "createAgreement", keyed)) is not None:
            found = (await store.agreements_by_ids(conn, [earlier]))[0]
            if found is None:
                raise Conflict("the agreement recorded for this idempotency key no longer exists")
            return found
        members = {conference.organizer_id, *conference.participant_ids}
        for index, party in enumerate(parties):
            if party not in members:
                raise BadUserInput(f"partyIds[{index}]: a party must be the organizer or a participant of the conference")
        agreement = Agreement(uuid7_at(now), conference.id, clean, text, status, parties, 1)
        await store.insert_agreement(conn, agreement, now)
        await record_creation(
            conn, viewer, operation="createAgreement", keyed=keyed, created=agreement.id,
            emitted=[domain_events.agreement_event(agreement, "created", at=now, actor_kind=viewer.organization_kind)],
            action="agreement.create", object_id=to_global_id("Agreement", agreement.id),
        )
    return agreement


async def set_status(
    pool: asyncpg.Pool,
    viewer: Viewer,
    agreement_id: UUID,
    status: AgreementStatus,
    *,
    expected_version: int | None,
    now: datetime,
) -> Agreement:
    async with pool.acquire() as conn, conn.transaction():
        agreement = await store.lock_agreement(conn, agreement_id)
        if agreement is None:
            raise NotFound("no Agreement with that id")
        try:
            conference = await _visible_conference(conn, viewer, agreement.conference_id)
        except NotFound:
            raise NotFound("no Agreement with that id") from None
        access.require(viewer, Action.SET_AGREEMENT_STATUS, relation(conference))
        check_agreement_version(agreement, expected_version)
        changed = set_agreement_status(agreement, status)
        await store.update_agreement(conn, changed)
        await events.append_with_audit(
            conn,
            [
                domain_events.agreement_event(
                    changed, "status_changed", at=now, actor_kind=viewer.organization_kind, previous=agreement.status
                )
            ],
            viewer,
            "agreement.status",
            [to_global_id("Agreement", agreement.id)],
        )
    return changed


async def add_commitment(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    agreement_id: UUID,
    owner_id: UUID,
    title: str,
    description: str,
    due_on: date | None,
    kpi: Kpi | None,
    idempotency_key: str | None,
    now: datetime,
) -> Commitment:
    clean = clean_title(title)
    text = clean_description(description)
    keyed = _key(idempotency_key)
    async with pool.acquire() as conn, conn.transaction():
        agreement = await store.lock_agreement(conn, agreement_id)
        if agreement is None:
            raise NotFound("no Agreement with that id")
        try:
            conference = await _visible_conference(conn, viewer, agreement.conference_id)
        except NotFound:
            raise NotFound("no Agreement with that id") from None
        access.require(viewer, Action.ADD_COMMITMENT, relation(conference))
        if (earlier := await _earlier(conn, viewer, "addCommitment", keyed)) is not None:
            found = (await store.commitments_by_ids(conn, [earlier]))[0]
            if found is None:
                raise Conflict("the commitment recorded for this idempotency key no longer exists")
            return found
        if agreement.status in (AgreementStatus.COMPLETED, AgreementStatus.WITHDRAWN):
            raise Conflict(f"an agreement that is {agreement.status.value} takes no new commitments")
        if owner_id not in agreement.party_ids:
            raise BadUserInput("ownerId: the owner of a commitment must be a party to the agreement")
        if kpi is not None and not access.may_measure(viewer, owner_id):
            raise Forbidden("a KPI measures its owner's notices; your organization may set one only on its own commitments")
        commitment = Commitment(
            id=uuid7_at(now),
            agreement_id=agreement.id,
            conference_id=agreement.conference_id,
            owner_id=owner_id,
            title=clean,
            description=text,
            due_on=due_on,
            status=CommitmentStatus.PLANNED,
            progress=0,
            kpi=kpi,
            version=1,
        )
        await store.insert_commitment(conn, commitment, now)
        await store.insert_update(
            conn, commitment.id, CommitmentUpdate(now, commitment.status, 0, viewer.organization_kind, None)
        )
        await record_creation(
            conn, viewer, operation="addCommitment", keyed=keyed, created=commitment.id,
            emitted=[domain_events.commitment_event(commitment, "added", at=now, actor_kind=viewer.organization_kind)],
            action="commitment.add", object_id=to_global_id("Commitment", commitment.id),
        )
    return commitment


async def change_commitment(
    pool: asyncpg.Pool,
    viewer: Viewer,
    commitment_id: UUID,
    *,
    status: CommitmentStatus,
    progress: int,
    note: str | None,
    expected_version: int | None,
    now: datetime,
) -> Commitment:
    screened = screen_note(note)
    async with pool.acquire() as conn, conn.transaction():
        commitment = await store.lock_commitment(conn, commitment_id)
        if commitment is None:
            raise NotFound("no Commitment with that id")
        try:
            conference = await _visible_conference(conn, viewer, commitment.conference_id)
        except NotFound:
            raise NotFound("no Commitment with that id") from None
        access.require(viewer, Action.UPDATE_COMMITMENT, relation(conference, commitment.owner_id))
        check_commitment_version(commitment, expected_version)
        changed, update = update_commitment(
            commitment, status, progress, actor_kind=viewer.organization_kind, now=now, note=screened
        )
        await store.update_commitment(conn, changed)
        await store.insert_update(conn, commitment.id, update)
        await events.append_with_audit(
            conn,
            [
                domain_events.commitment_event(
                    changed, "updated", at=now, actor_kind=viewer.organization_kind, previous=commitment.status
                )
            ],
            viewer,
            "commitment.update",
            [to_global_id("Commitment", commitment.id)],
        )
    return changed


# ------------------------------------------------------------------- reads


async def conferences(pool: asyncpg.Pool, viewer: Viewer) -> list[Conference]:
    async with pool.acquire() as conn:
        return [c for c in await store.all_conferences(conn) if sees(viewer, c)]


async def commitments(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    owner_id: UUID | None,
    statuses: Sequence[CommitmentStatus],
    overdue: bool | None,
    now: datetime,
) -> list[Commitment]:
    async with pool.acquire() as conn:
        found = await store.find_commitments(conn, owner_id=owner_id, statuses=statuses, overdue=overdue, today=today(now))
        conference_ids = list(dict.fromkeys(c.conference_id for c in found))
        seen = {c.id for c in await store.conferences_by_ids(conn, conference_ids) if c is not None and sees(viewer, c)}
    return [c for c in found if c.conference_id in seen]


async def measures(pool: asyncpg.Pool, owner_ids: Sequence[UUID], now: datetime) -> list[Measures]:
    """KPI figures per owner over the last 90 days before `now` (the request's clock)."""
    async with pool.acquire() as conn:
        return await store.measures(conn, owner_ids, now)


async def mark_overdue_commitments(pool: asyncpg.Pool, now: datetime, *, limit: int = 500) -> int:
    """COMMITMENT_OVERDUE, once per commitment, when its dueOn has passed and it is neither DONE nor WITHDRAWN.

    For the deadlines worker: call it each pass until it returns less than `limit`.
    """
    async with pool.acquire() as conn, conn.transaction():
        overdue = await store.claim_overdue(conn, today(now), now, limit)
        await events.append_with_audit(
            conn,
            [domain_events.commitment_event(c, "overdue", at=now, actor_kind=None) for c in overdue],
            PLATFORM,
            "commitment.overdue",
            [to_global_id("Commitment", c.id) for c in overdue],
        )
    return len(overdue)
