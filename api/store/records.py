"""Domain records rebuilt from stored rows without their generated __init__.

A frozen dataclass's __init__ sets each field through object.__setattr__: building a page's 50
notices and 100 history entries that way was 8% of serving the page (`python -m
bench.inprocess_read --instructions`: 14.81 million instructions per page, 13.55 with the two
classes unfrozen). Rows read back from this platform's own tables hold values that were checked
when they were written, so the store fills the instance directly; the classes stay frozen for
every other use (assignment still raises, `dataclasses.replace` still goes through __init__).
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def rebuild(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass `cls` holding `values`, which must name every field and
    nothing else (a count here; the names are compared with the fields in tests/test_records.py).
    Only for classes without __post_init__, field defaults or __slots__."""
    if len(values) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} has {len(cls.__dataclass_fields__)} fields, "  # type: ignore[attr-defined]
                        f"given {len(values)}: {sorted(values)}")
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record
