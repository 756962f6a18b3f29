"""The notices, notice_hashes and notice_history tables.

Writes are set-based (unnest), so reporting a thousand notices costs a handful
of statements, not thousands. Reads take the viewer's scope as SQL that mirrors
api/domain/access.py (tests/test_notice_tiers.py checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from ..domain.access import NoticeScope
from ..domain.events import Event
from ..domain.notices import (
    PDQ_MATCH_DISTANCE,
    ContentCategory,
    ContentHash,
    HashAlgorithm,
    HistoryEntry,
    Notice,
    NoticeStatus,
    RefusalReason,
    pdq_bits,
)
from ..domain.organizations import OrganizationKind
from .audit import ENTRIES as AUDIT_ENTRIES
from .audit import Actor
from .events import COMMIT_ORDER_LOCK
from .idempotency import KEY_LOCK_ID

COLUMNS = """
    n.id, n.reference, n.status, n.category, n.provider_id, n.reporter_id, n.url_ciphertext, n.url_key_id,
    n.reported_at, n.due_at, n.acknowledged_at, n.removed_at, n.refusal_reason, n.preservation_requested, n.version
"""
OPEN = "n.status NOT IN ('REMOVED', 'VERIFIED_OFFLINE', 'WITHDRAWN')"
OPEN_URL_INDEX = "notices_open_url_key"  # one open notice per provider and URL (migration 0002)

# A new notice arrives with its content hashes and its first history entry: one statement
# for all three tables, and the hashes and history only of the rows actually inserted (a
# duplicate of an open notice inserts nothing). Foreign keys are checked at the end of the
# statement, when the notices are there. {before} and {gate} are REPORT_ONE's (empty for INSERT);
# {notices} and {firsts} are the rows of notices and of first history entries: arrays unnested
# for INSERT, one row of scalars for REPORT_ONE (ROWS and ONE_ROW).
_INSERT_CTES = f"""
    WITH {{before}} inserted AS (
        INSERT INTO notices AS n (id, reference, status, category, provider_id, reporter_id, url_ciphertext,
                                  url_key_id, url_hmac, reported_at, due_at)
        SELECT i.id,
               'NTC-' || to_char(i.reported_at AT TIME ZONE 'UTC', 'YYYY') || '-'
                      || lpad(nextval('notice_reference_seq')::text, 6, '0'),
               'NOTIFIED', i.category, i.provider_id, i.reporter_id, i.ciphertext, i.key_id, i.url_hmac,
               i.reported_at, i.due_at
        FROM {{gate}} {{notices}}
             AS i(id, category, provider_id, reporter_id, ciphertext, key_id, url_hmac, reported_at, due_at, ord)
        ORDER BY i.ord
        ON CONFLICT (provider_id, url_hmac) WHERE status NOT IN ('REMOVED', 'VERIFIED_OFFLINE', 'WITHDRAWN') DO NOTHING
        RETURNING {COLUMNS}
    ), hashes AS (
        INSERT INTO notice_hashes (notice_id, algorithm, value, bits)
        SELECT h.notice_id, h.algorithm, h.value, h.bits::bit(256)
        FROM unnest($10::uuid[], $11::text[], $12::text[], $13::text[]) AS h(notice_id, algorithm, value, bits)
        WHERE h.notice_id IN (SELECT id FROM inserted)
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), history AS (
        INSERT INTO notice_history (notice_id, position, at, from_status, to_status, actor_kind, note)
        SELECT i.id, 1, i.reported_at, NULL, 'NOTIFIED', x.actor_kind, x.note
        FROM inserted i JOIN {{firsts}} AS x(id, actor_kind, note) ON x.id = i.id
        RETURNING 1
    )
"""
ROWS = {
    "notices": """unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::bytea[], $6::text[], $7::bytea[],
                         $8::timestamptz[], $9::timestamptz[]) WITH ORDINALITY""",
    "firsts": "unnest($1::uuid[], $14::text[], $15::text[])",
}
# One report's notice as scalars: asyncpg encodes a one-element array through its generic
# iterable checks (~70 isinstance checks against collections.abc a report), a scalar directly.
ONE_ROW = {
    "notices": """(SELECT $1::uuid, $2::text, $3::uuid, $4::uuid, $5::bytea, $6::text, $7::bytea, $8::timestamptz,
                           $9::timestamptz, 1)""",
    "firsts": "(SELECT $1::uuid, $14::text, $15::text)",
}
INSERT = _INSERT_CTES.format(before="", gate="", **ROWS) + "SELECT * FROM inserted"
# One report, whole, in one statement run outside an explicit transaction: the notice with its
# hashes and history (as INSERT), the idempotency key, the event and the audit entry, or nothing at
# all when the URL is a duplicate of an open notice or the key was recorded before (every later part
# reads `inserted`). Why one statement: the commit-order lock is then held only while PostgreSQL
# finishes this statement and commits it, never across a round trip to the API and the API's wait
# for its event loop, which under load is what serialized single reports.
#
# Locks, in the transactional path's order so the two cannot deadlock: the key's first (`key_lock`,
# which `inserted` joins, so it is held before the notice's entry in the open-URL index is), then
# that entry, then commit order. `commit_order` reads every other part, so those are written
# before it is taken and only the event, the audit entry, the foreign-key checks and COMMIT run
# under it. A key recorded by a transaction that committed after this statement began is invisible
# to the NOT EXISTS but fails the primary key, and with it the whole statement; either way the
# caller takes the transactional path, which returns the earlier result. The event's envelope is
# built by the caller, whole but for the reference, which the sequence hands out here.
REPORT_ONE = _INSERT_CTES.format(
    before=f"""key_lock AS MATERIALIZED (
        SELECT l.locked FROM (
            SELECT count(*) AS locked FROM (
                SELECT pg_advisory_xact_lock({KEY_LOCK_ID.format(organization="$16::uuid", subject="$17", key="$18")})
                WHERE $18::text IS NOT NULL
            ) AS a
        ) AS l
        WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k
                          WHERE k.organization_id = $16 AND k.subject = $17 AND k.operation = $19 AND k.key = $18)
    ),""",
    gate="key_lock,",
    **ONE_ROW,
) + f"""
    , claimed AS (
        INSERT INTO idempotency_keys (organization_id, subject, key, operation, result_id, deduplicated)
        SELECT $16, $17, $18, $19, i.id, false FROM inserted i WHERE $18::text IS NOT NULL
        RETURNING 1
    ), commit_order AS MATERIALIZED (
        SELECT pg_advisory_xact_lock($20)
        FROM inserted, (SELECT count(*) FROM claimed) AS c, (SELECT count(*) FROM hashes) AS h,
             (SELECT count(*) FROM history) AS x
    ), event AS (
        INSERT INTO events (seq, id, subject, type, aggregate_id, aggregate_version, occurred_at, envelope)
        SELECT nextval('events_seq'), $21, $22, $23, i.id, $24, $25, jsonb_set($26::jsonb, '{{data,reference}}', to_jsonb(i.reference))
        FROM commit_order, inserted i
    ), audit AS ({AUDIT_ENTRIES.format(organization="$16", subject="$17", action="$27", object_ids="ARRAY[$28]",
                                       gate="commit_order, inserted,")})
    SELECT * FROM inserted
"""
OPEN_FOR = f"""
    SELECT {COLUMNS}, n.url_hmac FROM notices n
    JOIN unnest($1::uuid[], $2::bytea[]) AS k(provider_id, url_hmac)
      ON n.provider_id = k.provider_id AND n.url_hmac = k.url_hmac
    WHERE {OPEN}
"""
GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM notices n WHERE n.id = $1 FOR UPDATE"
BY_IDS = f"SELECT {COLUMNS} FROM notices n WHERE n.id = ANY($1::uuid[])"
UPDATE = """
    UPDATE notices SET status = $2, acknowledged_at = $3, removed_at = $4, refusal_reason = $5,
                       preservation_requested = $6, version = $7,
                       escalated_at = CASE WHEN $2 = 'ESCALATED' THEN coalesce(escalated_at, $8) ELSE escalated_at END
    WHERE id = $1 AND version = $7 - 1
"""
# A transition: the new state and its history entry in one statement (one round trip fewer while
# the command holds the row's lock); the entry only if the version guard let the update through.
UPDATE_WITH_HISTORY = f"""
    WITH changed AS ({UPDATE} RETURNING id)
    INSERT INTO notice_history (notice_id, position, at, from_status, to_status, actor_kind, note)
    SELECT c.id, coalesce((SELECT max(position) FROM notice_history WHERE notice_id = c.id), 0) + 1,
           $9, $10, $11, $12, $13
    FROM changed c
"""
HISTORY = """
    SELECT notice_id, at, from_status, to_status, actor_kind, note FROM notice_history
    WHERE notice_id = ANY($1::uuid[]) ORDER BY notice_id, position
"""
HASHES = "SELECT notice_id, algorithm, value FROM notice_hashes WHERE notice_id = ANY($1::uuid[]) ORDER BY algorithm, value"
# Earlier notices of the same URL, or sharing an exact hash, or a PDQ hash within the match distance.
RELATED = f"""
    WITH source AS (SELECT id, url_hmac, reported_at FROM notices WHERE id = ANY($1::uuid[])),
    pairs AS (
        SELECT s.id AS source_id, n.id AS related_id
        FROM source s JOIN notices n ON n.url_hmac = s.url_hmac AND n.id <> s.id
        UNION
        SELECT a.notice_id, b.notice_id
        FROM notice_hashes a JOIN notice_hashes b
          ON b.algorithm = a.algorithm AND b.value = a.value AND b.notice_id <> a.notice_id
        WHERE a.notice_id = ANY($1::uuid[]) AND a.algorithm <> 'PDQ'
        UNION
        SELECT a.notice_id, b.notice_id
        FROM notice_hashes a JOIN notice_hashes b
          ON b.algorithm = 'PDQ' AND b.notice_id <> a.notice_id AND bit_count(a.bits # b.bits) <= {PDQ_MATCH_DISTANCE}
        WHERE a.notice_id = ANY($1::uuid[]) AND a.algorithm = 'PDQ'
    )
    SELECT p.source_id, {COLUMNS}
    FROM pairs p JOIN source s ON s.id = p.source_id JOIN notices n ON n.id = p.related_id
    WHERE (n.reported_at, n.id) < (s.reported_at, s.id)
    ORDER BY p.source_id, n.reported_at DESC, n.id DESC
"""


# Enum members by their stored value: a page turns ~200 column values into members, and a
# dict lookup costs a tenth of the Enum call. Only this module writes these columns, from the
# same enums (notices' also have CHECK constraints), so an unknown value is a bug either way.
_STATUS = {m.value: m for m in NoticeStatus}
_CATEGORY = {m.value: m for m in ContentCategory}
_REFUSAL = {m.value: m for m in RefusalReason}
_ACTOR_KIND = {m.value: m for m in OrganizationKind}


# Notices and history entries read from rows are made without their dataclass __init__: a frozen
# dataclass's __init__ sets each field through object.__setattr__, and building a page's notices and
# history entries that way was 8% of serving it (14.81 -> 13.55 million instructions a page, `python
# -m bench.inprocess_read --instructions`); the instance is given its finished __dict__ instead, in
# place (a shared helper doing it cost 1.4% of the page back in calls). The classes stay frozen for
# every other use. tests/test_records.py checks that Notice and HistoryEntry have nothing their
# __init__ would add (no __post_init__, __slots__ or defaults) and that both builders set every field,
# under its own name, and nothing else.
_new = object.__new__


# COLUMNS' names in order. A notice is read from its row by position: a Record's lookup by name
# cost ~500 instructions, 15 a notice, ~6% of building a page's. Every statement read with
# to_notice has COLUMNS at `start` (tests/test_notice_reads.py prepares each and checks the names).
NAMES = ("id", "reference", "status", "category", "provider_id", "reporter_id", "url_ciphertext", "url_key_id",
         "reported_at", "due_at", "acknowledged_at", "removed_at", "refusal_reason", "preservation_requested", "version")
if tuple(column.strip().removeprefix("n.") for column in COLUMNS.split(",")) != NAMES:
    raise ImportError("COLUMNS and NAMES (to_notice's order) disagree")
RELATED_START = 1  # RELATED has the source's id first


def to_notice(row: asyncpg.Record, start: int = 0) -> Notice:
    (id_, reference, status, category, provider_id, reporter_id, url_ciphertext, url_key_id, reported_at, due_at,
     acknowledged_at, removed_at, refusal_reason, preservation_requested, version) = row[start:start + len(NAMES)]
    record = _new(Notice)
    record.__dict__.update({
        "id": id_,
        "reference": reference,
        "status": _STATUS[status],
        "category": _CATEGORY[category],
        "provider_id": provider_id,
        "reporter_id": reporter_id,
        "url_ciphertext": bytes(url_ciphertext),
        "url_key_id": url_key_id,
        "reported_at": reported_at,
        "due_at": due_at,
        "acknowledged_at": acknowledged_at,
        "removed_at": removed_at,
        "refusal_reason": _REFUSAL[refusal_reason] if refusal_reason else None,
        "preservation_requested": preservation_requested,
        "version": version,
    })
    return record


@dataclass(frozen=True)
class NewNotice:
    id: UUID
    category: ContentCategory
    provider_id: UUID
    reporter_id: UUID
    ciphertext: bytes
    key_id: str
    url_hmac: bytes
    reported_at: datetime
    due_at: datetime
    hashes: tuple[ContentHash, ...]
    reporter_kind: OrganizationKind  # the first history entry: NOTIFIED, by the reporter
    note: str | None

    def as_inserted(self, reference: str) -> Notice:
        """The notice as INSERT writes it, for what must be built before the row exists (its event)."""
        return Notice(
            id=self.id,
            reference=reference,
            status=NoticeStatus.NOTIFIED,
            category=self.category,
            provider_id=self.provider_id,
            reporter_id=self.reporter_id,
            url_ciphertext=self.ciphertext,
            url_key_id=self.key_id,
            reported_at=self.reported_at,
            due_at=self.due_at,
            acknowledged_at=None,
            removed_at=None,
            refusal_reason=None,
            preservation_requested=False,
            version=1,
        )


async def insert_new(conn: asyncpg.Connection, rows: Sequence[NewNotice]) -> dict[UUID, Notice]:
    """Insert what is not a duplicate of an open notice, with its hashes and first history entry;
    returns the inserted ones by id."""
    records = await conn.fetch(INSERT, *_insert_arguments(rows))
    return {record["id"]: to_notice(record) for record in records}


def _insert_arguments(rows: Sequence[NewNotice]) -> tuple[list[Any], ...]:
    """$1 to $15 of INSERT (ROWS), a column each."""
    return (
        [r.id for r in rows],
        [r.category.value for r in rows],
        [r.provider_id for r in rows],
        [r.reporter_id for r in rows],
        [r.ciphertext for r in rows],
        [r.key_id for r in rows],
        [r.url_hmac for r in rows],
        [r.reported_at for r in rows],
        [r.due_at for r in rows],
        *_hash_arguments(rows),
        [r.reporter_kind.value for r in rows],
        [r.note for r in rows],
    )


def _one_row_arguments(row: NewNotice) -> tuple[Any, ...]:
    """$1 to $15 of REPORT_ONE (ONE_ROW): INSERT's, the notice and its first entry as scalars."""
    return (
        row.id,
        row.category.value,
        row.provider_id,
        row.reporter_id,
        row.ciphertext,
        row.key_id,
        row.url_hmac,
        row.reported_at,
        row.due_at,
        *_hash_arguments([row]),
        row.reporter_kind.value,
        row.note,
    )


def _hash_arguments(rows: Sequence[NewNotice]) -> tuple[list[Any], ...]:
    """$10 to $13: the content hashes of all rows, a column each."""
    hashes = [(r.id, h) for r in rows for h in r.hashes]
    return (
        [notice_id for notice_id, _ in hashes],
        [h.algorithm.value for _, h in hashes],
        [h.value for _, h in hashes],
        [pdq_bits(h.value) if h.algorithm is HashAlgorithm.PDQ else None for _, h in hashes],
    )


async def report_one(
    conn: asyncpg.Connection,
    row: NewNotice,
    event: Event,
    actor: Actor,
    *,
    key: str | None,
    operation: str,
    audit_action: str,
    audit_object_id: str,
) -> Notice | None:
    """Write one report whole, in a statement of its own (REPORT_ONE: `conn` must not be in a
    transaction, the statement is one); the notice as inserted.

    None when this statement cannot settle the report alone, and then it wrote nothing: the URL is
    a duplicate of an open notice, or the idempotency key was used before.
    """
    try:
        record = await conn.fetchrow(
            REPORT_ONE,
            *_one_row_arguments(row),
            actor.organization_id,
            actor.subject,
            key,
            operation,
            COMMIT_ORDER_LOCK,
            event.id,
            event.subject,
            event.type,
            event.aggregate_version,
            event.occurred_at,
            event.envelope(),
            audit_action,
            audit_object_id,
        )
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name == "idempotency_keys_pkey":
            return None
        raise
    return to_notice(record) if record else None


async def open_for(conn: asyncpg.Connection, keys: Sequence[tuple[UUID, bytes]]) -> dict[tuple[UUID, bytes], Notice]:
    records = await conn.fetch(OPEN_FOR, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["provider_id"], bytes(r["url_hmac"])): to_notice(r) for r in records}


async def get_for_update(conn: asyncpg.Connection, notice_id: UUID) -> Notice | None:
    row = await conn.fetchrow(GET_FOR_UPDATE, notice_id)
    return to_notice(row) if row else None


async def update(conn: asyncpg.Connection, notice: Notice, now: datetime) -> None:
    """Write a changed notice; the version guard makes a lost update impossible even without the row lock."""
    status = await conn.execute(UPDATE, *_update_arguments(notice, now))
    if status != "UPDATE 1":
        raise RuntimeError(f"notice {notice.id} changed under a held row lock")


async def update_with_history(conn: asyncpg.Connection, notice: Notice, entry: HistoryEntry, now: datetime) -> None:
    """A transition written: the changed notice (as `update`) and its history entry after the others."""
    status = await conn.execute(
        UPDATE_WITH_HISTORY,
        *_update_arguments(notice, now),
        entry.at,
        entry.from_status.value if entry.from_status else None,
        entry.to_status.value,
        entry.actor_kind.value,
        entry.note,
    )
    if status != "INSERT 0 1":
        raise RuntimeError(f"notice {notice.id} changed under a held row lock")


def _update_arguments(notice: Notice, now: datetime) -> tuple[Any, ...]:
    """$1 to $8 of UPDATE (and of UPDATE_WITH_HISTORY, which begins with it)."""
    return (
        notice.id,
        notice.status.value,
        notice.acknowledged_at,
        notice.removed_at,
        notice.refusal_reason.value if notice.refusal_reason else None,
        notice.preservation_requested,
        notice.version,
        now,
    )


async def by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Notice | None]:
    found = {r["id"]: to_notice(r) for r in await conn.fetch(BY_IDS, list(ids))}
    return [found.get(i) for i in ids]


async def history(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[HistoryEntry]]:
    grouped: dict[UUID, list[HistoryEntry]] = {i: [] for i in ids}
    for r in await conn.fetch(HISTORY, list(ids)):
        grouped[r["notice_id"]].append(_history_entry(r["at"], r["from_status"], r["to_status"], r["actor_kind"], r["note"]))
    return [grouped[i] for i in ids]


def _history_entry(at: datetime, from_status: str | None, to_status: str, actor_kind: str, note: str | None) -> HistoryEntry:
    entry = _new(HistoryEntry)
    entry.__dict__.update({
        "at": at,
        "from_status": _STATUS[from_status] if from_status else None,
        "to_status": _STATUS[to_status],
        "actor_kind": _ACTOR_KIND[actor_kind],
        "note": note,
    })
    return entry


async def hashes(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[ContentHash]]:
    grouped: dict[UUID, list[ContentHash]] = {i: [] for i in ids}
    for r in await conn.fetch(HASHES, list(ids)):
        grouped[r["notice_id"]].append(ContentHash(HashAlgorithm(r["algorithm"]), r["value"]))
    return [grouped[i] for i in ids]


async def related(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[Notice]]:
    grouped: dict[UUID, list[Notice]] = {i: [] for i in ids}
    for r in await conn.fetch(RELATED, list(ids)):
        grouped[r["source_id"]].append(to_notice(r, start=RELATED_START))
    return [grouped[i] for i in ids]


# ------------------------------------------------------------------ lists


@dataclass(frozen=True)
class NoticeFilter:
    statuses: tuple[NoticeStatus, ...] = ()
    provider_ids: tuple[UUID, ...] = ()
    categories: tuple[ContentCategory, ...] = ()
    overdue: bool | None = None
    reported_after: datetime | None = None
    reported_before: datetime | None = None
    url_hmac: bytes | None = None
    content_hash: ContentHash | None = None


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, clause: str, *values: Any) -> None:
        names = []
        for value in values:
            self.args.append(value)
            names.append(f"${len(self.args)}")
        self.clauses.append(clause.format(*names))

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def _scope_sql(where: _Where, scope: NoticeScope, *, full_only: bool) -> None:
    """The viewer's notices as SQL; `full_only` narrows to those it sees at the FULL tier."""
    related_only = scope.related_only or (full_only and not scope.full_tier_everywhere)
    if related_only:
        where.add("(n.provider_id = {0} OR n.reporter_id = {0})", scope.organization_id)


def _one_of(where: _Where, column: str, sql_type: str, values: list[Any]) -> None:
    """One value as `=`, so (provider_id, id DESC) and (status, id DESC) serve a page in order with
    LIMIT; PostgreSQL 16 cannot read an index in order for `= ANY(array)` and would sort every match."""
    if len(values) == 1:
        where.add(f"{column} = {{0}}::{sql_type}", values[0])
    else:
        where.add(f"{column} = ANY({{0}}::{sql_type}[])", values)


def _filter_where(scope: NoticeScope, query: NoticeFilter, now: datetime) -> _Where:
    where = _Where()
    # Searching by URL or hash reveals FULL-tier facts, so it only ever matches FULL-tier notices.
    _scope_sql(where, scope, full_only=query.url_hmac is not None or query.content_hash is not None)
    if query.statuses:
        _one_of(where, "n.status", "text", [s.value for s in query.statuses])
    if query.provider_ids:
        _one_of(where, "n.provider_id", "uuid", list(query.provider_ids))
    if query.categories:
        where.add("n.category = ANY({0}::text[])", [c.value for c in query.categories])
    if query.overdue is not None:
        clause = "(n.status IN ('NOTIFIED', 'ACKNOWLEDGED') AND n.due_at < {0})"
        where.add(clause if query.overdue else f"NOT {clause}", now)
    if query.reported_after is not None:
        where.add("n.reported_at >= {0}", query.reported_after)
    if query.reported_before is not None:
        where.add("n.reported_at < {0}", query.reported_before)
    if query.url_hmac is not None:
        where.add("n.url_hmac = {0}", query.url_hmac)
    if query.content_hash is not None:
        h = query.content_hash
        if h.algorithm is HashAlgorithm.PDQ:
            where.add(
                "EXISTS (SELECT 1 FROM notice_hashes h WHERE h.notice_id = n.id AND h.algorithm = 'PDQ'"
                f" AND bit_count(h.bits # {{0}}::text::bit(256)) <= {PDQ_MATCH_DISTANCE})",
                pdq_bits(h.value),
            )
        else:
            where.add(
                "EXISTS (SELECT 1 FROM notice_hashes h WHERE h.notice_id = n.id AND h.algorithm = {0} AND h.value = {1})",
                h.algorithm.value,
                h.value,
            )
    return where


async def page(
    conn: asyncpg.Connection,
    scope: NoticeScope,
    query: NoticeFilter,
    *,
    now: datetime,
    after: UUID | None,
    limit: int,
) -> list[Notice]:
    """Newest first by id (UUIDv7, time-ordered): a cursor is the last id seen, stable under inserts."""
    sql, args = _page_sql(scope, query, now=now, after=after, limit=limit)
    return [to_notice(r) for r in await conn.fetch(sql, *args)]


async def page_with_history(
    conn: asyncpg.Connection,
    scope: NoticeScope,
    query: NoticeFilter,
    *,
    now: datetime,
    after: UUID | None,
    limit: int,
) -> list[tuple[Notice, list[HistoryEntry]]]:
    """`page`, each notice with its history, in one round trip: the history is aggregated per notice
    of the page (after the limit, so a filter matching many notices aggregates only the page's)."""
    sql, args = _page_sql(scope, query, now=now, after=after, limit=limit)
    rows = await conn.fetch(with_history(sql), *args)
    return [(to_notice(r), [_history_entry(*h) for h in r["history"]]) for r in rows]


def with_history(page_sql: str) -> str:
    """A page's statement with each notice's history aggregated beside it (after the limit), as
    notice_history_entry values (migration 0006: asyncpg resolves a named type's field codecs once,
    where for an anonymous ROW(...) it looks each up again for every entry)."""
    return f"""SELECT p.*, (SELECT coalesce(array_agg(ROW(h.at, h.from_status, h.to_status, h.actor_kind, h.note)
                                                        ::notice_history_entry ORDER BY h.position), '{{}}')
                      FROM notice_history h WHERE h.notice_id = p.id) AS history
               FROM ({page_sql}) p ORDER BY p.id DESC"""


def _page_sql(scope: NoticeScope, query: NoticeFilter, *, now: datetime, after: UUID | None, limit: int) -> tuple[str, list[Any]]:
    where = _filter_where(scope, query, now)
    if after is not None:
        where.add("n.id < {0}", after)
    where.args.append(limit)
    return f"SELECT {COLUMNS} FROM notices n WHERE {where.sql()} ORDER BY n.id DESC LIMIT ${len(where.args)}", where.args


async def count(conn: asyncpg.Connection, scope: NoticeScope, query: NoticeFilter, *, now: datetime) -> int:
    where = _filter_where(scope, query, now)
    return int(await conn.fetchval(f"SELECT count(*) FROM notices n WHERE {where.sql()}", *where.args))
