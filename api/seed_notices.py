"""Demo notices whose yearly counts follow the reported growth in the Netherlands.

Reports of child sexual abuse material grew from about 3,000 in 2014 to almost
18,000 in 2017. The demo keeps that shape at 1/100 scale (about 360 notices),
so seeding takes seconds, and goes through the real commands with a clock set
to the past: every notice has its history, events and audit entries.

Outcomes are drawn from a fixed seed: most removed within the 24-hour
deadline, a tail removed late, some refused and escalated, some withdrawn,
and in the last weeks a few still open and overdue.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from .domain.notices import ContentCategory, RefusalReason, Transition
from .domain.organizations import Organization, OrganizationKind, Role, Viewer
from .protect import UrlProtector
from .services.notices import NoticeCommands, ReportInput

SCALE = 100
YEARLY = {2014: 3000, 2015: 5500, 2016: 10000, 2017: 17800}


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _viewer(organization: Organization) -> Viewer:
    return Viewer(
        subject="demo-seed", organization_id=organization.id, organization_kind=organization.kind,
        roles=frozenset({Role.ANALYST, Role.MEMBER}),
    )


async def seed_notices(pool: asyncpg.Pool, protector: UrlProtector, organizations: Sequence[Organization]) -> int:
    """Seed once: does nothing when the demo reporters have reported before. Returns how many were made."""
    reporters = [o for o in organizations if o.kind in (OrganizationKind.HOTLINE, OrganizationKind.POLICE)]
    providers = [o for o in organizations if o.kind is OrganizationKind.COMPANY]
    if not reporters or not providers:
        return 0
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM notices WHERE reporter_id = ANY($1::uuid[])", [r.id for r in reporters]):
            return 0
    rng = random.Random(2018)
    clock = _Clock(datetime(2014, 1, 1, tzinfo=UTC))
    commands = NoticeCommands(pool, protector, clock=clock)
    # Providers differ: the last one is the slow, refusing host the agreement was made for.
    speed = {p.id: 1.0 + 1.5 * (i == len(providers) - 1) for i, p in enumerate(providers)}
    made = 0
    for year, count in YEARLY.items():
        times = sorted(
            datetime(year, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in range(count // SCALE)
        )
        for moment in times:
            reporter = rng.choice(reporters)
            provider = rng.choices(providers, weights=[3 if speed[p.id] > 1 else 2 for p in providers])[0]
            category = rng.choices(list(ContentCategory), weights=[80, 15, 5])[0]
            url = f"https://{provider.name.split()[0].lower()}.example/u/{rng.getrandbits(64):016x}.jpg"
            sha = f"{rng.getrandbits(256):064x}"
            reported = await commands.report(
                _viewer(reporter), [ReportInput(provider.id, url, category, [("SHA256", sha)])], reported_at=moment
            )
            notice = reported[0].notice
            await _play_out(commands, clock, rng, notice.id, moment, _viewer(provider), _viewer(reporter), speed[provider.id])
            made += 1
    return made


async def _play_out(
    commands: NoticeCommands,
    clock: _Clock,
    rng: random.Random,
    notice_id: UUID,
    reported_at: datetime,
    provider: Viewer,
    reporter: Viewer,
    slowness: float,
) -> None:
    """One notice's life after the report, at plausible moments."""
    roll = rng.random()
    recent = datetime(2017, 11, 1, tzinfo=UTC) < reported_at
    if recent and roll < 0.3:
        return  # still open at the end of the demo period: overdue
    if roll < 0.04:
        clock.now = reported_at + timedelta(hours=rng.uniform(1, 12))
        await commands.act(reporter, notice_id, Transition.WITHDRAW, note="reported by mistake")
        return
    if roll < 0.10 * slowness:
        clock.now = reported_at + timedelta(hours=rng.uniform(2, 40))
        await commands.act(
            provider, notice_id, Transition.REFUSE, refusal_reason=rng.choice(list(RefusalReason)),
        )
        clock.now += timedelta(days=rng.uniform(1, 5))
        await commands.act(reporter, notice_id, Transition.ESCALATE)
        if rng.random() < 0.7:
            clock.now += timedelta(days=rng.uniform(1, 14))
            await commands.act(provider, notice_id, Transition.REMOVE)
        return
    acknowledged = reported_at + timedelta(minutes=rng.uniform(10, 120))
    clock.now = acknowledged
    await commands.act(provider, notice_id, Transition.ACKNOWLEDGE)
    late = rng.random() < 0.12 * slowness
    hours = rng.uniform(24, 24 * 6) if late else rng.lognormvariate(1.6, 0.8)
    clock.now = max(reported_at + timedelta(hours=hours), acknowledged + timedelta(minutes=5))
    await commands.act(provider, notice_id, Transition.REMOVE)
    if rng.random() < 0.8:
        clock.now += timedelta(hours=rng.uniform(2, 72))
        await commands.act(reporter, notice_id, Transition.VERIFY_OFFLINE)
