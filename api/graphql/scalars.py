"""Scalars as strawberry defines them, but for the cost of writing them out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition


def isoformat(value: datetime) -> str:
    """`value.isoformat()`. For the values PostgreSQL hands back (aware, in UTC) orjson writes the
    same text in a third of the time, and a page of notices writes a timestamp per history entry;
    anything else (another offset, which orjson rounds to the minute; no zone; a subclass, which
    orjson refuses; a date) is isoformat's."""
    if type(value) is datetime and value.tzinfo is UTC:
        return orjson.dumps(value)[1:-1].decode()
    return value.isoformat()


DATETIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, serialize=isoformat)
OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATETIME}
