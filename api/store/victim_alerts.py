"""The victim_alerts, victim_alert_hashes and victim_alert_matches tables.

The matching query mirrors notice relations: exact SHA256/MD5 values, or PDQ
hashes within the match distance (bit_count of the XOR of bit(256) values).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.notices import PDQ_MATCH_DISTANCE, ContentHash, HashAlgorithm, pdq_bits
from ..domain.victim_alerts import Match, VictimAlert

COLUMNS = "a.id, a.holder_id, a.token_ciphertext, a.token_key_id, a.created_at, a.cancelled_at"
# Active alerts matching a notice's hashes, checked when the notice is removed or verified offline
# (an alert registered after that is matched at registration: ALREADY_REMOVED).
# Two branches rather than one OR, so exact values use the (algorithm, value) index and only PDQ
# hashes are compared one by one.
MATCHING = f"""
    SELECT a.id AS alert_id, a.holder_id
    FROM notice_hashes n
    JOIN victim_alert_hashes h ON h.algorithm = n.algorithm AND h.value = n.value
    JOIN victim_alerts a ON a.id = h.alert_id AND a.cancelled_at IS NULL
    WHERE n.notice_id = $1 AND n.algorithm <> 'PDQ'
    UNION
    SELECT a.id, a.holder_id
    FROM notice_hashes n
    JOIN victim_alert_hashes h ON h.algorithm = 'PDQ' AND bit_count(h.bits # n.bits) <= {PDQ_MATCH_DISTANCE}
    JOIN victim_alerts a ON a.id = h.alert_id AND a.cancelled_at IS NULL
    WHERE n.notice_id = $1 AND n.algorithm = 'PDQ'
"""
# Notices already taken down that match a newly registered alert (matched at registration, so a
# victim registered after the removal still hears of it). Same two branches as MATCHING.
ALREADY_REMOVED = f"""
    SELECT m.notice_id FROM (
        SELECT n.notice_id
        FROM victim_alert_hashes h
        JOIN notice_hashes n ON n.algorithm = h.algorithm AND n.value = h.value
        WHERE h.alert_id = $1 AND h.algorithm <> 'PDQ'
        UNION
        SELECT n.notice_id
        FROM victim_alert_hashes h
        JOIN notice_hashes n ON n.algorithm = 'PDQ' AND bit_count(h.bits # n.bits) <= {PDQ_MATCH_DISTANCE}
        WHERE h.alert_id = $1 AND h.algorithm = 'PDQ'
    ) m
    JOIN notices x ON x.id = m.notice_id AND x.status = ANY($2::text[])
    ORDER BY m.notice_id
    LIMIT $3
"""
INSERT_MATCHES = """
    INSERT INTO victim_alert_matches (alert_id, notice_id, at)
    SELECT m.alert_id, m.notice_id, $3 FROM unnest($1::uuid[], $2::uuid[]) AS m(alert_id, notice_id)
    ON CONFLICT (alert_id, notice_id) DO NOTHING
    RETURNING alert_id, notice_id
"""

# Matching at registration (ALREADY_REMOVED) and at removal (MATCHING) each run under this
# transaction lock. Without it a removal committing while an alert is being registered is
# missed by both: the registration's query ran before the removal committed, and the
# removal's matcher ran before the alert committed. With it, whichever matches second sees
# what the first committed.
MATCHING_LOCK = 7460202


async def lock_matching(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MATCHING_LOCK)


def to_alert(r: asyncpg.Record) -> VictimAlert:
    return VictimAlert(r["id"], r["holder_id"], bytes(r["token_ciphertext"]), r["token_key_id"], r["created_at"], r["cancelled_at"])


async def insert(conn: asyncpg.Connection, alert: VictimAlert, hashes: Sequence[ContentHash]) -> None:
    await conn.execute(
        """INSERT INTO victim_alerts (id, holder_id, token_ciphertext, token_key_id, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        alert.id,
        alert.holder_id,
        alert.token_ciphertext,
        alert.token_key_id,
        alert.created_at,
    )
    await conn.execute(
        """INSERT INTO victim_alert_hashes (alert_id, algorithm, value, bits)
           SELECT $1, h.algorithm, h.value, h.bits::bit(256)
           FROM unnest($2::text[], $3::text[], $4::text[]) AS h(algorithm, value, bits)""",
        alert.id,
        [h.algorithm.value for h in hashes],
        [h.value for h in hashes],
        [pdq_bits(h.value) if h.algorithm is HashAlgorithm.PDQ else None for h in hashes],
    )


async def by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[VictimAlert | None]:
    found = {r["id"]: to_alert(r) for r in await conn.fetch(f"SELECT {COLUMNS} FROM victim_alerts a WHERE a.id = ANY($1::uuid[])", list(ids))}
    return [found.get(i) for i in ids]


async def of_holder(conn: asyncpg.Connection, holder_id: UUID) -> list[VictimAlert]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM victim_alerts a WHERE a.holder_id = $1 ORDER BY a.id DESC", holder_id)
    return [to_alert(r) for r in rows]


async def get_for_update(conn: asyncpg.Connection, alert_id: UUID) -> VictimAlert | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM victim_alerts a WHERE a.id = $1 FOR UPDATE", alert_id)
    return to_alert(row) if row else None


async def cancel(conn: asyncpg.Connection, alert_id: UUID, at: datetime) -> None:
    await conn.execute("UPDATE victim_alerts SET cancelled_at = $2 WHERE id = $1", alert_id, at)


async def hashes(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[ContentHash]]:
    grouped: dict[UUID, list[ContentHash]] = {i: [] for i in ids}
    rows = await conn.fetch(
        "SELECT alert_id, algorithm, value FROM victim_alert_hashes WHERE alert_id = ANY($1::uuid[]) ORDER BY algorithm, value",
        list(ids),
    )
    for r in rows:
        grouped[r["alert_id"]].append(ContentHash(HashAlgorithm(r["algorithm"]), r["value"]))
    return [grouped[i] for i in ids]


async def matches(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[Match]]:
    grouped: dict[UUID, list[Match]] = {i: [] for i in ids}
    rows = await conn.fetch(
        "SELECT alert_id, notice_id, at FROM victim_alert_matches WHERE alert_id = ANY($1::uuid[]) ORDER BY alert_id, at, notice_id",
        list(ids),
    )
    for r in rows:
        grouped[r["alert_id"]].append(Match(r["alert_id"], r["notice_id"], r["at"]))
    return [grouped[i] for i in ids]


async def matching_alerts(conn: asyncpg.Connection, notice_id: UUID) -> list[tuple[UUID, UUID]]:
    """(alert id, holder id) of every active alert sharing a hash with the notice."""
    return [(r["alert_id"], r["holder_id"]) for r in await conn.fetch(MATCHING, notice_id)]


async def already_removed(conn: asyncpg.Connection, alert_id: UUID, statuses: Sequence[str], limit: int) -> list[UUID]:
    """Notices in one of `statuses` (taken down) sharing a hash with the alert, at most `limit`."""
    return [r["notice_id"] for r in await conn.fetch(ALREADY_REMOVED, alert_id, list(statuses), limit)]


async def record_matches(
    conn: asyncpg.Connection, pairs: Sequence[tuple[UUID, UUID]], at: datetime
) -> set[tuple[UUID, UUID]]:
    """The (alert, notice) pairs whose match is new (the unique key makes a repeat a no-op)."""
    rows = await conn.fetch(INSERT_MATCHES, [a for a, _ in pairs], [n for _, n in pairs], at)
    return {(r["alert_id"], r["notice_id"]) for r in rows}