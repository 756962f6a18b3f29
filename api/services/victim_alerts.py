"""Victim alerts: register, cancel, read (the holder only), and match removed notices.

The victim token is encrypted at rest with the URL protector's AES-GCM keys,
bound to the alert id; it is decrypted only to show it to the holder.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain import events as domain_events
from ..domain.access import Action, Relation
from ..domain.errors import BadUserInput, Conflict, NotFound
from ..domain.ids import to_global_id, uuid7_at
from ..domain.organizations import Viewer
from ..domain.victim_alerts import MATCHING_STATUSES, VictimAlert, check_cancel, clean_alert_hashes, clean_token
from ..protect import UrlProtector
from ..store import audit, events
from ..store import victim_alerts as store
from ..store.idempotency import IdempotencyKey, claim_keys, record_keys
from .notices import PLATFORM

IDEMPOTENCY_KEY_MAX = 200


def sees(viewer: Viewer, alert: VictimAlert | None) -> bool:
    return alert is not None and access.sees_victim_alert(viewer, holder_id=alert.holder_id)


def token_of(protector: UrlProtector, alert: VictimAlert) -> str:
    return protector.decrypt(alert.id, alert.token_ciphertext, alert.token_key_id)


async def register(
    pool: asyncpg.Pool,
    protector: UrlProtector,
    viewer: Viewer,
    *,
    victim_token: str,
    content_hashes: Sequence[tuple[str, str]],
    idempotency_key: str | None,
    now: datetime,
) -> VictimAlert:
    access.require(viewer, Action.REGISTER_VICTIM_ALERT)
    token = clean_token(victim_token)
    hashes = clean_alert_hashes(content_hashes)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise BadUserInput(f"idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    keyed = [IdempotencyKey(idempotency_key, 0)] if idempotency_key else []
    async with pool.acquire() as conn, conn.transaction():
        earlier = await claim_keys(conn, viewer, "registerVictimAlert", keyed)
        if earlier:
            found = (await store.by_ids(conn, [next(iter(earlier.values())).result_id]))[0]
            if found is None:
                raise Conflict("the victim alert recorded for this idempotency key no longer exists")
            return found
        alert_id = uuid7_at(now)
        ciphertext, key_id = protector.encrypt(alert_id, token)
        alert = VictimAlert(alert_id, viewer.organization_id, ciphertext, key_id, now, None)
        await store.insert(conn, alert, hashes)
        matched = await _match_already_removed(conn, alert, now=now)
        await audit.append(conn, viewer, "victim_alert.register", to_global_id("VictimAlert", alert.id))
        # Which taken-down notices carry the hashes is learnt at once: each is on the record.
        await audit.append_many(conn, viewer, "victim_alert.match", [to_global_id("Notice", n) for n in matched])
        await record_keys(conn, viewer, "registerVictimAlert", [(k, alert.id, False) for k in keyed])
    return alert


# Matches recorded at registration at most; a victim's hashes matching more taken-down notices
# than this is not a case for one alert (the rest match on their next removal or verification).
BACKFILL_LIMIT = 10_000


async def _match_already_removed(conn: asyncpg.Connection, alert: VictimAlert, *, now: datetime) -> list[UUID]:
    """A victim registered after the content came down is told too: matches with notices already
    removed (or verified offline) are recorded now, each with its VICTIM_ALERT_MATCHED event.
    Returns the notices newly matched."""
    await store.lock_matching(conn)
    removed = await store.already_removed(conn, alert.id, sorted(MATCHING_STATUSES), BACKFILL_LIMIT)
    told = await _record_matches(conn, [(alert.id, alert.holder_id, n) for n in removed], now=now)
    return [notice_id for _, _, notice_id in told]


async def _record_matches(
    conn: asyncpg.Connection, matches: Sequence[tuple[UUID, UUID, UUID]], *, now: datetime
) -> list[tuple[UUID, UUID, UUID]]:
    """(alert, holder, notice) matches: the new ones are recorded, each with its event to the holder
    alone; returns them. Shared by matching at registration and at removal."""
    if not matches:
        return []
    new = await store.record_matches(conn, [(alert, notice) for alert, _, notice in matches], now)
    told = [m for m in matches if (m[0], m[2]) in new]
    await events.append(conn, [domain_events.victim_alert_matched(a, h, n, at=now) for a, h, n in told])
    return told


async def cancel(pool: asyncpg.Pool, viewer: Viewer, alert_id: UUID, *, now: datetime) -> VictimAlert:
    async with pool.acquire() as conn, conn.transaction():
        alert = await store.get_for_update(conn, alert_id)
        if alert is None or not sees(viewer, alert):
            raise NotFound("no VictimAlert with that id")
        access.require(viewer, Action.CANCEL_VICTIM_ALERT, Relation(holder_id=alert.holder_id))
        check_cancel(alert)
        await store.cancel(conn, alert.id, now)
        await audit.append(conn, viewer, "victim_alert.cancel", to_global_id("VictimAlert", alert.id))
    return VictimAlert(alert.id, alert.holder_id, alert.token_ciphertext, alert.token_key_id, alert.created_at, now)


async def alerts_of(pool: asyncpg.Pool, viewer: Viewer) -> list[VictimAlert]:
    async with pool.acquire() as conn:
        return [a for a in await store.of_holder(conn, viewer.organization_id) if sees(viewer, a)]


async def match_removed_notice(conn: asyncpg.Connection, notice_id: UUID, *, now: datetime) -> int:
    """Record matches of a removed notice with active alerts, once each, with a VICTIM_ALERT_MATCHED event
    to the holder alone; in the caller's transaction. Returns how many matches are new."""
    await store.lock_matching(conn)
    found = await store.matching_alerts(conn, notice_id)
    told = await _record_matches(conn, [(alert, holder, notice_id) for alert, holder in found], now=now)
    # The platform matched: one entry per alert told (the match itself names the notice).
    await audit.append_many(conn, PLATFORM, "victim_alert.match", [to_global_id("VictimAlert", a) for a, _, _ in told])
    return len(told)
