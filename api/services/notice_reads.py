"""Reading notices as a viewer: what it may see, at the tier it may see it, and the audited URL read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.access import Tier
from ..domain.errors import BadUserInput
from ..domain.ids import to_global_id
from ..domain.notices import HistoryEntry, Notice, normalize_url
from ..domain.organizations import Organization, Viewer
from ..protect import UrlProtector
from ..store import audit
from ..store import notices as store
from .organizations import KnownOrganizations

MAX_PAGE = 500


@dataclass(frozen=True)
class Visible:
    notice: Notice
    tier: Tier


@dataclass(frozen=True)
class NoticePage:
    items: list[Visible]
    has_next: bool
    total: int
    # Read with the page when asked for, so a page's nested fields need no further query.
    organizations: dict[UUID, Organization] | None = None
    history: list[list[HistoryEntry]] | None = None  # items[i]'s at [i]


def visible(viewer: Viewer, notice: Notice | None) -> Visible | None:
    if notice is None:
        return None
    tier = access.notice_tier(viewer, reporter_id=notice.reporter_id, provider_id=notice.provider_id)
    return Visible(notice, tier) if tier is not None else None


def visible_all(viewer: Viewer, notices: Iterable[Notice]) -> list[Visible]:
    """`visible` for many notices, the tier worked out once per (reporter, provider) pair: it is a
    function of the viewer and those two ids alone (`access.notice_tier`'s arguments), and a page
    has a handful of pairs. Building the policy's Relation for each of 50 notices was ~5% of
    serving a page (`python -m bench.inprocess_read --instructions`)."""
    tiers: dict[tuple[UUID, UUID], Tier | None] = {}
    shown: list[Visible] = []
    reporter_id: UUID | None = None
    provider_id: UUID | None = None
    tier: Tier | None = None
    for notice in notices:
        # Most notices have the pair of the notice before: compared by value, not looked up (a UUID
        # hashes anew each time; see _organization_ids).
        if notice.reporter_id != reporter_id or notice.provider_id != provider_id:
            reporter_id, provider_id = notice.reporter_id, notice.provider_id
            pair = (reporter_id, provider_id)
            if pair not in tiers:
                tiers[pair] = access.notice_tier(viewer, reporter_id=reporter_id, provider_id=provider_id)
            tier = tiers[pair]
        if tier is not None:
            shown.append(Visible(notice, tier))
    return shown


def _organization_ids(items: list[Visible]) -> list[UUID]:
    """The page's providers and reporters, each once. asyncpg's UUID computes its hash anew on every
    lookup (~900 instructions): a page hashed ~8 per notice, ~3% of serving it; most notices have
    the provider and reporter of the notice before, so those are compared by value instead."""
    ids: set[UUID] = set()
    provider_id: UUID | None = None
    reporter_id: UUID | None = None
    for seen in items:
        if seen.notice.provider_id != provider_id:
            provider_id = seen.notice.provider_id
            ids.add(provider_id)
        if seen.notice.reporter_id != reporter_id:
            reporter_id = seen.notice.reporter_id
            ids.add(reporter_id)
    return list(ids)


def url_filter(protector: UrlProtector, url: str) -> bytes:
    return protector.lookup_hash(normalize_url(url, field="filter.url"))


async def list_notices(
    pool: asyncpg.Pool,
    viewer: Viewer,
    query: store.NoticeFilter,
    *,
    now: datetime,
    first: int,
    after: UUID | None,
    count_total: bool = True,
    with_organizations: bool = False,
    with_history: bool = False,
    known: KnownOrganizations | None = None,
) -> NoticePage:
    """A page of visible notices; the total is counted only when asked for (a count scans every match).

    The page's history comes with it when asked for (one query), and its providers and reporters
    from what this process knows of organizations (`known`; a query for those it has not seen):
    one acquire and usually one round trip per page, with no per-notice awaits afterwards (those
    cost more than the queries on a 50-notice page).
    """
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}, got {first}")
    scope = access.notice_scope(viewer)
    orgs: dict[UUID, Organization] | None = None
    history: list[list[HistoryEntry]] | None = None
    async with pool.acquire() as conn:
        if with_history:
            pairs = await store.page_with_history(conn, scope, query, now=now, after=after, limit=first + 1)
            rows = [notice for notice, _ in pairs]
        else:
            rows = await store.page(conn, scope, query, now=now, after=after, limit=first + 1)
        total = await store.count(conn, scope, query, now=now) if count_total else 0
        items = visible_all(viewer, rows[:first])
        if with_history:
            # Each shown notice's entries, by the notice object's identity (`pairs` keeps them alive):
            # an int to hash, not a UUID.
            entries_of = {id(notice): entries for notice, entries in pairs}
            history = [entries_of[id(seen.notice)] for seen in items]
        if with_organizations and items:
            ids = _organization_ids(items)
            found = await (known or KnownOrganizations()).by_ids(conn, ids)
            orgs = {o.id: o for o in found if o is not None}
    return NoticePage(items, len(rows) > first, total, orgs, history)


async def read_urls(
    pool: asyncpg.Pool, protector: UrlProtector, viewer: Viewer, notices: Sequence[Notice]
) -> list[str | None]:
    """Decrypt for FULL-tier viewers only, and write one audit entry per URL read, in one transaction."""
    readable = [n for n in notices if (seen := visible(viewer, n)) is not None and access.shows(seen.tier, "url")]
    urls = {n.id: protector.decrypt(n.id, n.url_ciphertext, n.url_key_id) for n in readable}
    if readable:
        async with pool.acquire() as conn, conn.transaction():
            await audit.append_many(conn, viewer, "notice.url.read", [to_global_id("Notice", n.id) for n in readable])
    return [urls.get(n.id) for n in notices]
