"""Notices: the takedown lifecycle of ACCESS.md, and what a notice may contain.

Pure: commands hand in the current state, the actor and the time, and get back
the new state or a typed error. Nothing here reads a clock or a database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from .errors import BadUserInput, Conflict
from .organizations import OrganizationKind, reject_control_characters


class NoticeStatus(StrEnum):
    NOTIFIED = "NOTIFIED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REMOVED = "REMOVED"
    VERIFIED_OFFLINE = "VERIFIED_OFFLINE"
    REFUSED = "REFUSED"
    ESCALATED = "ESCALATED"
    WITHDRAWN = "WITHDRAWN"


class ContentCategory(StrEnum):
    BASELINE_CSAM = "BASELINE_CSAM"
    NATIONALLY_ILLEGAL = "NATIONALLY_ILLEGAL"
    HARMFUL = "HARMFUL"


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    MD5 = "MD5"
    PDQ = "PDQ"


class RefusalReason(StrEnum):
    NOT_ILLEGAL = "NOT_ILLEGAL"
    NOT_HOSTED_BY_US = "NOT_HOSTED_BY_US"
    INSUFFICIENT_INFORMATION = "INSUFFICIENT_INFORMATION"
    OTHER = "OTHER"


class VerificationOutcome(StrEnum):
    OFFLINE = "OFFLINE"
    STILL_ONLINE = "STILL_ONLINE"


S = NoticeStatus
OPEN_STATUSES = frozenset({S.NOTIFIED, S.ACKNOWLEDGED, S.REFUSED, S.ESCALATED})
AWAITING_REMOVAL = frozenset({S.NOTIFIED, S.ACKNOWLEDGED})
PDQ_MATCH_DISTANCE = 31


class Transition(StrEnum):
    """What an actor asks for; each maps to allowed source statuses and an event."""

    ACKNOWLEDGE = "acknowledged"
    REMOVE = "removed"
    REFUSE = "refused"
    VERIFY_OFFLINE = "verified"
    REAPPEAR = "reappeared"
    ESCALATE = "escalated"
    WITHDRAW = "withdrawn"


# The lifecycle diagram of ACCESS.md as a table: transition -> (from statuses, to status).
LIFECYCLE: dict[Transition, tuple[frozenset[NoticeStatus], NoticeStatus]] = {
    Transition.ACKNOWLEDGE: (frozenset({S.NOTIFIED}), S.ACKNOWLEDGED),
    Transition.REMOVE: (frozenset({S.NOTIFIED, S.ACKNOWLEDGED, S.ESCALATED}), S.REMOVED),
    Transition.REFUSE: (frozenset({S.NOTIFIED, S.ACKNOWLEDGED}), S.REFUSED),
    Transition.VERIFY_OFFLINE: (frozenset({S.REMOVED}), S.VERIFIED_OFFLINE),
    Transition.REAPPEAR: (frozenset({S.REMOVED, S.VERIFIED_OFFLINE}), S.NOTIFIED),
    Transition.ESCALATE: (frozenset({S.NOTIFIED, S.ACKNOWLEDGED, S.REFUSED}), S.ESCALATED),
    Transition.WITHDRAW: (frozenset(set(S) - {S.VERIFIED_OFFLINE, S.WITHDRAWN}), S.WITHDRAWN),
}


@dataclass(frozen=True)
class ContentHash:
    algorithm: HashAlgorithm
    value: str  # lower-case hex


@dataclass(frozen=True)
class Notice:
    id: UUID
    reference: str
    status: NoticeStatus
    category: ContentCategory
    provider_id: UUID
    reporter_id: UUID
    url_ciphertext: bytes
    url_key_id: str
    reported_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    removed_at: datetime | None
    refusal_reason: RefusalReason | None
    preservation_requested: bool
    version: int

    def overdue(self, now: datetime) -> bool:
        return self.status in AWAITING_REMOVAL and now > self.due_at

    @property
    def seconds_to_removal(self) -> int | None:
        if self.removed_at is None:
            return None
        return int((self.removed_at - self.reported_at).total_seconds())


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    from_status: NoticeStatus | None
    to_status: NoticeStatus
    actor_kind: OrganizationKind
    note: str | None


@dataclass(frozen=True)
class Changed:
    """The outcome of a transition: the new notice and the history entry it adds."""

    notice: Notice
    entry: HistoryEntry
    transition: Transition


def check_version(notice: Notice, expected: int | None) -> None:
    if expected is not None and expected != notice.version:
        raise Conflict(f"notice {notice.reference} is at version {notice.version}, not {expected}; reload and retry")


def apply(
    notice: Notice,
    transition: Transition,
    *,
    actor_kind: OrganizationKind,
    now: datetime,
    note: str | None = None,
    refusal_reason: RefusalReason | None = None,
) -> Changed:
    """Move a notice along the lifecycle, or raise CONFLICT and change nothing."""
    sources, target = LIFECYCLE[transition]
    if notice.status not in sources:
        raise Conflict(f"notice {notice.reference} is {notice.status.value}; it cannot be {transition.value}")
    changes: dict[str, object] = {"status": target, "version": notice.version + 1}
    if transition is Transition.ACKNOWLEDGE:
        changes["acknowledged_at"] = now
    elif transition is Transition.REMOVE:
        changes["removed_at"] = now
    elif transition is Transition.REFUSE:
        changes["refusal_reason"] = refusal_reason or RefusalReason.OTHER
    elif transition is Transition.REAPPEAR:
        changes["removed_at"] = None  # it is online again; the deadline does not restart
    entry = HistoryEntry(at=now, from_status=notice.status, to_status=target, actor_kind=actor_kind, note=note)
    return Changed(replace(notice, **changes), entry, transition)  # type: ignore[arg-type]


def request_preservation(notice: Notice) -> Notice | None:
    """The flag, in any status but WITHDRAWN; None when it was already set (nothing changes)."""
    if notice.status is S.WITHDRAWN:
        raise Conflict(f"notice {notice.reference} is WITHDRAWN; preservation can no longer be requested")
    if notice.preservation_requested:
        return None
    return replace(notice, preservation_requested=True, version=notice.version + 1)


def due_at(reported_at: datetime, category: ContentCategory, deadlines: dict[ContentCategory, timedelta]) -> datetime:
    return reported_at + deadlines.get(category, timedelta(hours=24))


def reference(year: int, number: int) -> str:
    return f"NTC-{year}-{number:06d}"


# ------------------------------------------------------------------ input

URL_MAX = 4096
NOTE_MAX = 2000
HEX = re.compile(r"^[0-9a-f]+$")
HASH_HEX_LENGTH = {HashAlgorithm.SHA256: 64, HashAlgorithm.MD5: 32, HashAlgorithm.PDQ: 64}
DEFAULT_PORTS = {"http": 80, "https": 443}
SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def normalize_url(raw: str, *, field: str = "url") -> str:
    """The form that is hashed for lookup: scheme and host lower-cased, default port and fragment dropped.

    Path and query keep their case: on most servers they are case-sensitive.
    """
    text = raw.strip()
    if not text:
        raise BadUserInput(f"{field} must not be empty")
    if len(text) > URL_MAX:
        raise BadUserInput(f"{field} is longer than {URL_MAX} characters")
    if SPACE_OR_CONTROL.search(text):
        raise BadUserInput(f"{field} must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadUserInput(f"{field} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadUserInput(f"{field} must be an http or https URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BadUserInput(f"{field} has no host")
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise BadUserInput(f"{field} has an invalid host name") from None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        userinfo = parts.username or ""
        if parts.password:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def clean_hashes(values: Sequence[tuple[str, str]], *, field: str = "contentHashes") -> tuple[ContentHash, ...]:
    seen: dict[tuple[HashAlgorithm, str], ContentHash] = {}
    if len(values) > 50:
        raise BadUserInput(f"{field} holds at most 50 hashes")
    for index, (algorithm_name, raw) in enumerate(values):
        algorithm = HashAlgorithm(algorithm_name)
        value = raw.strip().lower()
        length = HASH_HEX_LENGTH[algorithm]
        if len(value) != length or not HEX.match(value):
            raise BadUserInput(
                f"{field}[{index}]: a {algorithm.value} hash is {length} hexadecimal characters, got {raw[:80]!r}"
            )
        seen[(algorithm, value)] = ContentHash(algorithm, value)
    return tuple(seen.values())


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
# International (+31 6 1234 5678, 0031...) or national (06-12345678, 020 123 4567) numbers;
# not dates (2018-02-13) or references (NTC-2018-000123).
PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)[1-9]|0)\d?[\d\s().-]{6,}\d(?![\w])")
REDACTED = "[redacted]"


def redact_contact_details(text: str) -> str:
    """E-mail addresses, IP addresses and phone numbers replaced by [redacted]: free text shared
    across organizations must not carry a person's contact details."""
    text = EMAIL.sub(REDACTED, text)
    text = IPV6.sub(lambda m: REDACTED if _is_ip(m.group(0)) else m.group(0), text)
    text = IPV4.sub(REDACTED, text)
    return PHONE.sub(lambda m: REDACTED if sum(c.isdigit() for c in m.group(0)) >= 7 else m.group(0), text)


def screen_note(note: str | None, *, field: str = "note") -> str | None:
    """Bound and screen free text: notes must not carry anyone's contact details or addresses."""
    if note is None:
        return None
    if len(note) > NOTE_MAX:
        raise BadUserInput(f"{field} must be at most {NOTE_MAX} characters, got {len(note)}")
    reject_control_characters(note, field)
    stripped = redact_contact_details(note).strip()
    return stripped or None


def pdq_bits(value: str) -> str:
    """A PDQ hash as the bit string PostgreSQL's bit(256) takes."""
    return bin(int(value, 16))[2:].zfill(256)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
