"""DateTime written as strawberry writes it (isoformat), however it is computed (api/graphql/scalars.py)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from api.graphql import scalars
from api.graphql.scalars import DATETIME, isoformat
from api.graphql.schema import create_schema, schema
from api.settings import Settings


def moments() -> list[datetime]:
    chance = random.Random(2026)
    start, span = datetime(1, 1, 1, tzinfo=UTC), (datetime(9999, 12, 31, tzinfo=UTC) - datetime(1, 1, 1, tzinfo=UTC))
    sampled = [start + timedelta(microseconds=chance.randrange(span // timedelta(microseconds=1))) for _ in range(5000)]
    return sampled + [moment.replace(microsecond=0) for moment in sampled[:500]] + [
        datetime(2026, 11, 29, 9, 28, 27, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]


def test_utc_moments_are_written_as_isoformat_writes_them() -> None:
    for moment in moments():
        assert isoformat(moment) == moment.isoformat()


def test_utc_moments_written_again_are_remembered_and_written_alike() -> None:
    first, again = datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=UTC), datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=UTC)
    written = isoformat(first)
    assert isoformat(again) is written and written == again.isoformat()
    # The same instant at another offset is equal to it, and hashes alike, but is written with its offset.
    elsewhere = again.astimezone(timezone(timedelta(hours=1)))
    assert elsewhere == first and isoformat(elsewhere) == "2026-11-29T10:28:27.000005+01:00"


def test_remembered_moments_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scalars, "REMEMBERED", 10)
    monkeypatch.setattr(scalars, "_WRITTEN", {})
    for moment in moments()[:25]:
        assert isoformat(moment) == moment.isoformat()
        assert 1 <= len(scalars._WRITTEN) <= 10


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=timezone(timedelta(seconds=37))),  # orjson would round this offset
        datetime(2026, 11, 29, 9, 28, 27, 5),
    ],
    ids=["another offset", "an offset in seconds", "no zone"],
)
def test_other_moments_are_isoformats_own(moment: datetime) -> None:
    assert isoformat(moment) == moment.isoformat()


class Moment(datetime):
    """A datetime subclass (as pendulum's are), which orjson refuses to write."""


def test_subclasses_and_dates_are_isoformats_own() -> None:
    moment = Moment(2026, 11, 29, 9, 28, 27, 5, tzinfo=UTC)
    assert isoformat(moment) == moment.isoformat()
    assert isoformat(date(2026, 11, 29)) == "2026-11-29"  # type: ignore[arg-type]


@pytest.mark.parametrize("served", [schema, create_schema(Settings.from_env({}))], ids=["printed", "served"])
def test_the_schemas_write_datetime_with_it(served: Any) -> None:
    converted = served.schema_converter.from_scalar(datetime)
    assert converted.serialize is isoformat and DATETIME.name == "DateTime"
