"""Idempotency keys: a repeated key from the same subject returns the first result and creates nothing.

Keys are locked (transaction-scoped advisory locks, in a fixed order so two
batches cannot deadlock) before they are looked up, so two concurrent calls
with one key cannot both create.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ..domain.organizations import Viewer

# The lock of one key, also taken by the one-statement report (store/notices.py REPORT_ONE).
KEY_LOCK_ID = "hashtextextended({organization}::text || '/' || {subject} || '/' || {key}, 0)"
LOCK = f"""
    SELECT pg_advisory_xact_lock({KEY_LOCK_ID.format(organization="$1", subject="$2", key="k")})
    FROM unnest($3::text[]) AS k ORDER BY k
"""
FIND = """
    SELECT key, result_id, deduplicated FROM idempotency_keys
    WHERE organization_id = $1 AND subject = $2 AND operation = $3 AND key = ANY($4::text[])
"""
RECORD = """
    INSERT INTO idempotency_keys (organization_id, subject, key, operation, result_id, deduplicated)
    SELECT $1, $2, k, $3, r, d FROM unnest($4::text[], $5::uuid[], $6::bool[]) AS x(k, r, d)
"""


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    index: int  # the input's position, so results can be put back in input order


@dataclass(frozen=True)
class Previous:
    result_id: UUID
    deduplicated: bool


async def claim_keys(
    conn: asyncpg.Connection, viewer: Viewer, operation: str, keys: Sequence[IdempotencyKey]
) -> dict[IdempotencyKey, Previous]:
    if not keys:
        return {}
    names = [k.key for k in keys]
    await conn.execute(LOCK, str(viewer.organization_id), viewer.subject, names)
    rows = await conn.fetch(FIND, viewer.organization_id, viewer.subject, operation, names)
    found = {r["key"]: Previous(r["result_id"], r["deduplicated"]) for r in rows}
    return {k: found[k.key] for k in keys if k.key in found}


async def record_keys(
    conn: asyncpg.Connection, viewer: Viewer, operation: str, results: Sequence[tuple[IdempotencyKey, UUID, bool]]
) -> None:
    if not results:
        return
    await conn.execute(
        RECORD,
        viewer.organization_id,
        viewer.subject,
        operation,
        [k.key for k, _, _ in results],
        [r for _, r, _ in results],
        [d for _, _, d in results],
    )
