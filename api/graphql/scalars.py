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
    orjson refuses; a date) is isoformat's. The UTC ones are remembered: the store hands out one
    object per value read (store/moments.py), whose hash is computed once, so the same moments
    written again and again (a page kept open) cost a lookup."""
    if type(value) is datetime and value.tzinfo is UTC:
        text = _WRITTEN.get(value)
        if text is None:
            if len(_WRITTEN) >= REMEMBERED:
                _WRITTEN.clear()
            text = _WRITTEN[value] = orjson.dumps(value)[1:-1].decode()
        return text
    return value.isoformat()


REMEMBERED = 50_000  # as store/moments.py: a few megabytes, forgotten all at once when full
# Only UTC values are keys, so two equal keys (the same instant) are also written alike.
_WRITTEN: dict[datetime, str] = {}


DATETIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, serialize=isoformat)
OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATETIME}
