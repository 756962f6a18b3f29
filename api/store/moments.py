"""timestamptz, encoded and decoded as asyncpg does, with the decoded values remembered.

asyncpg builds every timestamp it reads from a timedelta made of (0, seconds, microseconds), and
that constructor, normalizing through Python integers, was the largest single cost of reading a
page of notices (8% of its instructions: four timestamps a notice, one a history entry). The
same values come back again and again: a batch of a thousand reports shares one reported_at and
one due date, and the pages people keep open are read over and over. So each value PostgreSQL
sends (microseconds since 2000-01-01 UTC, asyncpg's "tuple" format) is looked up first and built
only when new. Datetimes are immutable, so handing out one object many times is safe.

Encoding must then be done here too (asyncpg takes both or neither); it follows asyncpg's
timestamptz_encode exactly, infinities and dates included (tests/test_moments.py compares the
two on a live connection).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
INFINITY, NEGATIVE_INFINITY = 2**63 - 1, -(2**63)
# What asyncpg reads infinities as (naive, so they compare unequal to any aware value), and the
# microsecond counts of those two values, which it writes as infinities.
INFINITE = datetime(9999, 12, 31, 23, 59, 59, 999999)
NEGATIVE_INFINITE = datetime(1, 1, 1)
_INFINITE_COUNT, _NEGATIVE_INFINITE_COUNT = 252455615999999999, -63082281600000000
REMEMBERED = 50_000  # values, a few megabytes; forgotten all at once when full


class Moments:
    """The codec of one process: `decode` and `encode` for asyncpg's set_type_codec(format="tuple")."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._seen: dict[int, datetime] = {}
        self._size = size

    def decode(self, value: tuple[int]) -> datetime:
        count = value[0]
        found = self._seen.get(count)
        if found is None:
            if count == INFINITY:
                return INFINITE
            if count == NEGATIVE_INFINITY:
                return NEGATIVE_INFINITE
            seconds, microseconds = divmod(count, 1_000_000)
            found = EPOCH + timedelta(0, seconds, microseconds)
            if len(self._seen) >= self._size:
                self._seen.clear()
            self._seen[count] = found
        return found

    def encode(self, value: datetime | date) -> tuple[int]:
        if not isinstance(value, datetime):
            if not isinstance(value, date):
                raise TypeError(f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}")
            value = datetime(value.year, value.month, value.day, tzinfo=_local_timezone())
        if value == INFINITE:
            return (INFINITY,)
        if value == NEGATIVE_INFINITE:
            return (NEGATIVE_INFINITY,)
        delta = value.astimezone(UTC) - EPOCH
        count = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if count == _INFINITE_COUNT:
            return (INFINITY,)
        if count == _NEGATIVE_INFINITE_COUNT:
            return (NEGATIVE_INFINITY,)
        return (count,)


def _local_timezone() -> timezone:
    offset = datetime.now(UTC).astimezone().utcoffset()
    assert offset is not None
    return timezone(offset)
