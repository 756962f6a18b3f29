"""Victim alerts: a holder (police or a hotline) asks to be told when matching content is taken down.

The victim is known by an opaque token that means something to the holder
alone. The token and the alert's hashes are shown to the holder only, never
put in an event another organization receives, and the token is stored
encrypted. A notice matches an alert when they share an exact SHA256 or MD5
hash, or PDQ hashes within a Hamming distance of 31.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .errors import BadUserInput, Conflict
from .notices import PDQ_MATCH_DISTANCE, ContentHash, HashAlgorithm, clean_hashes, hamming

TOKEN_MAX = 200
MATCHING_STATUSES = frozenset({"REMOVED", "VERIFIED_OFFLINE"})


@dataclass(frozen=True)
class VictimAlert:
    id: UUID
    holder_id: UUID
    token_ciphertext: bytes
    token_key_id: str
    created_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True)
class Match:
    alert_id: UUID
    notice_id: UUID
    at: datetime


def clean_token(token: str) -> str:
    text = token.strip()
    if not 1 <= len(text) <= TOKEN_MAX:
        raise BadUserInput(f"victimToken must be 1 to {TOKEN_MAX} characters")
    if any(ord(c) < 32 for c in text):
        raise BadUserInput("victimToken must not contain control characters")
    return text


def clean_alert_hashes(values: Sequence[tuple[str, str]]) -> tuple[ContentHash, ...]:
    hashes = clean_hashes(values)
    if not hashes:
        raise BadUserInput("contentHashes must hold at least one hash")
    return hashes


def check_cancel(alert: VictimAlert) -> None:
    if alert.cancelled_at is not None:
        raise Conflict("the victim alert is already cancelled")


def matches(a: ContentHash, b: ContentHash) -> bool:
    """The rule the SQL applies, for tests and documentation."""
    if a.algorithm is not b.algorithm:
        return False
    if a.algorithm is HashAlgorithm.PDQ:
        return hamming(a.value, b.value) <= PDQ_MATCH_DISTANCE
    return a.value == b.value
