"""Input types built from a plan (api/graphql/inputs.py) equal what strawberry's own conversion builds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.arguments import convert_argument

from api.domain.notices import ContentCategory, HashAlgorithm, NoticeStatus
from api.graphql.notices import ContentHashInput, NoticeFilter, ReportNoticeInput

SHA = "a" * 64
VALUES: list[dict[str, Any]] = [
    {"providerId": "T3JnOjE=", "url": "https://x.example/1", "category": ContentCategory.BASELINE_CSAM},
    {"providerId": "T3JnOjE=", "url": "https://x.example/2", "category": ContentCategory.BASELINE_CSAM,
     "contentHashes": [], "note": None, "idempotencyKey": None},
    {"providerId": "T3JnOjE=", "url": "https://x.example/3", "category": ContentCategory.BASELINE_CSAM,
     "contentHashes": [{"algorithm": HashAlgorithm.SHA256, "value": SHA}, {"algorithm": HashAlgorithm.MD5, "value": "b" * 32}],
     "note": "seen twice", "idempotencyKey": "k-1"},
    {"providerId": "T3JnOjE=", "url": "https://x.example/4", "category": ContentCategory.BASELINE_CSAM, "contentHashes": None},
]


FILTERS: list[dict[str, Any]] = [
    {},
    {"providerIds": ["T3JnOjE=", "T3JnOjI="], "statuses": [NoticeStatus.NOTIFIED], "overdue": None},
    {"categories": [ContentCategory.HARMFUL], "overdue": True, "reportedAfter": datetime(2026, 1, 1, tzinfo=UTC),
     "reportedBefore": datetime(2026, 2, 1, tzinfo=UTC), "url": "https://x.example/1",
     "contentHash": {"algorithm": HashAlgorithm.SHA256, "value": SHA}},
    {"providerIds": None, "contentHash": None},
]


def convert(value: dict[str, Any], planned: bool, type_: type = ReportNoticeInput) -> Any:
    definitions = [t.__strawberry_definition__ for t in (ReportNoticeInput, ContentHashInput, NoticeFilter)]  # type: ignore[attr-defined]
    hooks = [d.from_input for d in definitions]
    try:
        if not planned:
            for d in definitions:
                d.from_input = None
        built = convert_argument(value, type_, DEFAULT_SCALAR_REGISTRY, StrawberryConfig())
        assert isinstance(built, type_)
        return built
    finally:
        for d, hook in zip(definitions, hooks, strict=True):
            d.from_input = hook


@pytest.mark.parametrize("value", VALUES)
def test_planned_input_equals_strawberrys_conversion(value: dict[str, Any]) -> None:
    planned, generic = convert(value, planned=True), convert(value, planned=False)
    assert planned == generic
    hashes = planned.content_hashes
    assert hashes is None or all(type(h) is ContentHashInput for h in hashes)


def test_an_omitted_list_keeps_its_own_default_per_input() -> None:
    first, second = convert(VALUES[0], planned=True), convert(VALUES[0], planned=True)
    assert first.content_hashes == [] and first.content_hashes is not second.content_hashes


@pytest.mark.parametrize("value", FILTERS)
def test_planned_filter_equals_strawberrys_conversion(value: dict[str, Any]) -> None:
    assert convert(value, planned=True, type_=NoticeFilter) == convert(value, planned=False, type_=NoticeFilter)
