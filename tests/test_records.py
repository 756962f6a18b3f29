"""Notices and history entries read back from the database are the frozen records their classes
would build: every field set under its own name (no more, no fewer), equal to a normally built one,
still frozen (api/store/notices.py makes them without their __init__; see `_new` there).

The GraphQL objects a page makes from them without their __init__ (api/graphql/notices.py, `_new`)
are likewise what that __init__ would make."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import pytest

from api.domain.access import Tier
from api.domain.ids import from_global_id
from api.domain.notices import ContentCategory, HistoryEntry, Notice, NoticeStatus
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.graphql.notices import NoticeEdge, NoticeTransitionType, NoticeType, _edges
from api.services.notice_reads import Visible
from api.store import notices as store
from tests.conftest import Factory
from tests.notices_helpers import act, report


def fields(record: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(record)}


def as_built_by_the_class(record: Any) -> Any:
    return type(record)(**{name: getattr(record, name) for name in fields(record)})


@pytest.mark.parametrize("cls", [Notice, HistoryEntry])
def test_records_made_from_a_dict_have_nothing_their_init_would_add(cls: type) -> None:
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(cls))


async def test_notices_and_history_read_from_rows_are_complete_frozen_records(make: Factory, pool: asyncpg.Pool) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    made = await report(hotline, company.organization)
    await act(company, "acknowledge", made["id"])
    notice_id = from_global_id(made["id"])[1]
    async with pool.acquire() as conn:
        [notice] = await store.by_ids(conn, [notice_id])
        [entries] = await store.history(conn, [notice_id])
    assert notice is not None and len(entries) == 2
    for record in (notice, *entries):
        assert set(vars(record)) == fields(record), "every field, under its own name, and nothing else"
        assert record == as_built_by_the_class(record) and hash(record) == hash(as_built_by_the_class(record))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, sorted(fields(record))[0], None)
    assert notice.status is NoticeStatus.ACKNOWLEDGED and notice.category is ContentCategory.BASELINE_CSAM
    assert [e.to_status for e in entries] == [NoticeStatus.NOTIFIED, NoticeStatus.ACKNOWLEDGED]
    assert dataclasses.replace(notice, version=notice.version + 1).version == notice.version + 1


@pytest.mark.parametrize("cls", [NoticeType, NoticeEdge, NoticeTransitionType])
def test_graphql_objects_made_from_a_dict_have_nothing_their_init_would_add(cls: type) -> None:
    assert dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
    # __init__ sets a field it does not take only from a default; these have none.
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(cls) if not f.init)


@pytest.mark.parametrize("tier", list(Tier))
async def test_a_pages_notices_edges_and_transitions_are_what_their_classes_would_build(
    make: Factory, pool: asyncpg.Pool, tier: Tier
) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    made = await report(hotline, company.organization)
    await act(company, "acknowledge", made["id"], note="taken down")
    notice_id = from_global_id(made["id"])[1]
    async with pool.acquire() as conn:
        [notice] = await store.by_ids(conn, [notice_id])
        [entries] = await store.history(conn, [notice_id])
    assert notice is not None
    node = NoticeType.of(Visible(notice, tier), {}, entries)
    transitions = node._transitions(entries)
    edges = _edges([node], with_cursors=True) + _edges([node], with_cursors=False)
    for built in (node, *transitions, *edges):
        by_init = type(built)(**{f.name: getattr(built, f.name) for f in dataclasses.fields(built) if f.init})
        assert vars(built) == vars(by_init), "every field __init__ sets, under its own name, and nothing else"
    assert node.id == made["id"] and node.visibility is tier and node.seen.notice is notice
    assert [t.note for t in transitions] == [None, "taken down" if tier is not Tier.STATUS else None]
    assert edges[0].cursor and edges[0].node is node and edges[1].cursor == ""
