"""Time-ordered ids: a UUIDv7 made for a moment carries that moment, so ids sort by it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.domain.ids import uuid7_at


def test_an_id_made_for_a_moment_carries_its_milliseconds_and_sorts_by_them() -> None:
    moment = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=UTC)
    made = uuid7_at(moment)
    assert made.version == 7
    assert made.int >> 80 == int(moment.timestamp() * 1000)
    later = [uuid7_at(moment + timedelta(milliseconds=i)) for i in range(1, 50)]
    assert sorted([made, *later]) == [made, *later]
