"""Demo conference: the public-private conference of 13 February 2018, its agreements and what each party committed to.

Goes through the real commands (history, events and audit entries included),
with the organizer (the ministry) acting as ORGANIZER. Idempotent, and safe to
interrupt: a run stopped half-way is completed by the next (see seed_conference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

import asyncpg

from .domain.conferences import AgreementStatus, CommitmentStatus, Kpi, KpiComparison, KpiMetric
from .domain.organizations import Organization, OrganizationKind, Role, Viewer
from .services import conferences as commands
from .store import conferences as store

K = OrganizationKind
TITLE = "Public-private conference on online child sexual abuse material"
HELD_ON = date(2018, 2, 13)
HELD_AT = datetime(2018, 2, 13, 16, 0, tzinfo=UTC)
COMPANIES = "companies"  # every COMPANY among the seeded organizations


@dataclass(frozen=True)
class DemoCommitment:
    owner: str  # an organization kind, or COMPANIES for one commitment per company
    title: str
    description: str
    due_on: date | None
    kpi: Kpi | None = None
    status: CommitmentStatus = CommitmentStatus.PLANNED
    progress: int = 0
    note: str | None = None


@dataclass(frozen=True)
class DemoAgreement:
    title: str
    description: str
    parties: tuple[str, ...]
    commitments: tuple[DemoCommitment, ...]


SHARE_90 = Kpi(KpiMetric.SHARE_REMOVED_WITHIN_DEADLINE, KpiComparison.AT_LEAST, 0.9)
NONE_OVERDUE = Kpi(KpiMetric.OVERDUE_NOTICES, KpiComparison.AT_MOST, 0)
MEDIAN_12H = Kpi(KpiMetric.MEDIAN_SECONDS_TO_REMOVAL, KpiComparison.AT_MOST, 12 * 3600)
S = CommitmentStatus

AGREEMENTS = (
    DemoAgreement(
        "Companies remove reported material within 24 hours",
        "Hosting companies remove material reported by the hotline or the police within 24 hours of the notice, "
        "and acknowledge every notice. The regulator takes the administrative approach where they do not.",
        (COMPANIES, K.REGULATOR),
        (
            DemoCommitment(COMPANIES, "Remove reported material within 24 hours",
                           "At least 90% of notices removed within their deadline, measured over the last 90 days.",
                           date(2018, 12, 31), SHARE_90, S.IN_PROGRESS, 60, "24/7 abuse desk staffed"),
            DemoCommitment(COMPANIES, "No notice left open past its deadline",
                           "Every notice is handled before its deadline.", date(2018, 12, 31), NONE_OVERDUE, S.IN_PROGRESS, 40),
            DemoCommitment(K.REGULATOR, "Administrative approach for companies that do not remove",
                           "Warnings, removal orders and penalties for companies that leave material online.",
                           date(2019, 1, 1), None, S.IN_PROGRESS, 50, "first removal orders issued"),
        ),
    ),
    DemoAgreement(
        "Companies deploy hash matching on uploads",
        "Uploads are checked against the hotline's hash list (MD5, SHA256 and PDQ) before they are published.",
        (COMPANIES, K.HOTLINE),
        (
            DemoCommitment(COMPANIES, "Hash matching on all upload paths",
                           "Every upload is matched against the hash list before it is published.",
                           date(2018, 9, 1), None, S.IN_PROGRESS, 30),
            DemoCommitment(K.HOTLINE, "Share the hash list with companies daily",
                           "A daily export of confirmed hashes for participating companies.",
                           date(2018, 4, 1), None, S.DONE, 100, "daily export running since March"),
        ),
    ),
    DemoAgreement(
        "The hotline and police report through the platform",
        "Every notice to a hosting company is sent, tracked and verified through Takedown Exchange.",
        (K.HOTLINE, K.POLICE),
        (
            DemoCommitment(K.HOTLINE, "Report every notice through Takedown Exchange",
                           "Half of the hotline's notices removed within 12 hours.", date(2018, 6, 1), MEDIAN_12H, S.DONE, 100),
            DemoCommitment(K.POLICE, "Report through the platform and verify removals",
                           "Police notices go through the platform; removals are verified within a week.",
                           date(2018, 6, 1), None, S.DONE, 100),
        ),
    ),
    DemoAgreement(
        "Government publishes national figures yearly",
        "The ministry publishes the national figures (notices, removal times, escalations) every year.",
        (K.GOVERNMENT, K.PROSECUTOR),
        (
            DemoCommitment(K.GOVERNMENT, "Publish the national figures of 2018",
                           "Yearly report to parliament from the platform's statistics.", date(2019, 3, 1), None, S.PLANNED, 0),
            DemoCommitment(K.PROSECUTOR, "Prioritise escalated notices",
                           "Escalated notices are assessed for prosecution within 30 days.", date(2018, 12, 31), None, S.AT_RISK, 35,
                           "capacity shortfall in the second half of the year"),
        ),
    ),
    DemoAgreement(
        "Research into notifying victims",
        "Research whether and how victims can be told when their material is taken down (victim alerts).",
        (K.POLICE, K.HOTLINE, K.GOVERNMENT),
        (
            DemoCommitment(K.POLICE, "Pilot victim alerts", "Register alerts for consenting victims and evaluate the pilot.",
                           date(2018, 12, 1), None, S.IN_PROGRESS, 25),
        ),
    ),
)


def _viewer(organizer: Organization) -> Viewer:
    return Viewer("takedown-seed", organizer.id, organizer.kind, frozenset({Role.ORGANIZER, Role.ANALYST}))


def _ids(organizations: Sequence[Organization], who: str) -> list[UUID]:
    if who == COMPANIES:
        return [o.id for o in organizations if o.kind is K.COMPANY]
    return [o.id for o in organizations if o.kind.value == who][:1]


async def seed_conference(pool: asyncpg.Pool, organizations: Sequence[Organization]) -> bool:
    """The conference with its agreements and commitments; False when it was all there already.

    Each step first looks for what it would create (the conference by title and date, an agreement
    by title, a commitment by owner and title), so a run interrupted half-way is completed by the
    next, without duplicates. A status is set only on what nobody has changed since the seed made
    it (its version is still the seed's), so the next start of `takedown dev` never undoes a user's
    change; an agreement closed since, or an owner that is not a party, gets nothing added.
    """
    organizer = next((o for o in organizations if o.kind is K.GOVERNMENT), None)
    if organizer is None:
        return False
    viewer = _viewer(organizer)
    added = False
    async with pool.acquire() as conn:
        conference = await store.find_conference(conn, TITLE, HELD_ON)
    if conference is None:
        participants = [o.id for o in organizations if o.id != organizer.id]
        conference = await commands.create_conference(
            pool, viewer, title=TITLE, held_on=HELD_ON, participant_ids=participants, idempotency_key=None, now=HELD_AT
        )
        added = True
    async with pool.acquire() as conn:
        agreements = {a.title: a for a in (await store.agreements_of(conn, [conference.id]))[0]}
    for demo in AGREEMENTS:
        agreement = agreements.get(demo.title)
        if agreement is None:
            parties = [p for who in demo.parties for p in _ids(organizations, who)]
            agreement = await commands.create_agreement(
                pool, viewer, conference_id=conference.id, title=demo.title, description=demo.description,
                party_ids=parties, idempotency_key=None, now=HELD_AT,
            )
            added = True
        for before, version, after in ((AgreementStatus.DRAFT, 1, AgreementStatus.AGREED),
                                       (AgreementStatus.AGREED, 2, AgreementStatus.ACTIVE)):
            if agreement.status is before and agreement.version == version:
                agreement = await commands.set_status(pool, viewer, agreement.id, after, expected_version=version, now=HELD_AT)
                added = True
        if agreement.status is not AgreementStatus.ACTIVE:
            continue  # closed (or changed) since: nothing more to add to it
        async with pool.acquire() as conn:
            commitments = {(c.owner_id, c.title): c for c in (await store.commitments_of(conn, [agreement.id]))[0]}
        for item in demo.commitments:
            for owner in _ids(organizations, item.owner):
                if owner not in agreement.party_ids:
                    continue  # an organization added to the demo after this agreement was made
                commitment = commitments.get((owner, item.title))
                if commitment is None:
                    commitment = await commands.add_commitment(
                        pool, viewer, agreement_id=agreement.id, owner_id=owner, title=item.title,
                        description=item.description, due_on=item.due_on, kpi=item.kpi, idempotency_key=None, now=HELD_AT,
                    )
                    added = True
                if item.status is not CommitmentStatus.PLANNED and commitment.status is CommitmentStatus.PLANNED \
                        and commitment.version == 1:
                    await commands.change_commitment(
                        pool, viewer, commitment.id, status=item.status, progress=item.progress, note=item.note,
                        expected_version=1, now=datetime(2018, 6, 1, 9, 0, tzinfo=UTC),
                    )
                    added = True
    return added
