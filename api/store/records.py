"""Domain records rebuilt from stored rows without their generated __init__.

A frozen dataclass's __init__ sets each field through object.__setattr__: building a page's 50
notices and 100 history entries that way was 8% of serving the page (`python -m
bench.inprocess_read --instructions`: 14.81 million instructions per page, 13.55 with the two
classes unfrozen). What that __init__ checks, that every field is given once by name, is checked
here by count and by tests/test_records.py for names (a per-call comparison of names cost a
quarter of the saving); the classes stay frozen for every other use (assignment still raises,
`dataclasses.replace` still goes through __init__).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_FIELD_COUNTS: dict[type, int] = {}


def rebuild(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass `cls` holding `values`, which must name every field and
    nothing else (the number is checked here). Only for classes without __post_init__, field
    defaults or __slots__, which tests/test_records.py checks for the classes that use it, along
    with the names their builders give."""
    count = _FIELD_COUNTS.get(cls)
    if count is None:
        count = _FIELD_COUNTS[cls] = len(dataclasses.fields(cls))  # type: ignore[arg-type]
    if len(values) != count:
        raise TypeError(f"{cls.__name__} has {count} fields, given {len(values)}: {sorted(values)}")
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record
