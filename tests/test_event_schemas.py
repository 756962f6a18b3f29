"""Every emitted event validates against its JSON Schema in schema/events/ (EVENTS.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from api.domain.access import Tier
from api.domain.ids import from_global_id
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.protect import load_url_protector
from api.services.events import Delivered, redacted
from api.services.notices import NoticeCommands
from api.settings import Settings
from api.store.event_reads import EventRecord
from tests.conftest import Factory
from tests.notices_helpers import act, report

SCHEMAS = Path(__file__).resolve().parent.parent / "schema" / "events"
SHA = "ef" * 32


def validators() -> dict[str, Draft202012Validator]:
    found = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        found[path.name.removesuffix(".json")] = Draft202012Validator(schema, format_checker=FormatChecker())
    return found


def test_there_is_a_schema_for_every_event_type_of_the_contract() -> None:
    contract = (Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql").read_text()
    block = contract[contract.index("enum EventType {") :]
    names = block[block.index("{") + 1 : block.index("}")].split()
    from api.services.events import key_of

    assert {f"nl.takedown.{key_of(n)}.v1" for n in names} == set(validators())


async def test_every_emitted_event_validates(make: Factory, pool: asyncpg.Pool, settings: Settings) -> None:
    # Make sure every notice event type has been emitted at least once.
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    police = await make.member(K.POLICE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    one = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": SHA}], note="first")
    for action in ("acknowledge", "remove", "verify_online", "remove", "verify_offline"):
        assert "errors" not in await act(hotline if action.startswith("verify") else company, action, one["id"])
    two = await report(hotline, company.organization)
    for member, action in ((police, "preserve"), (company, "refuse"), (hotline, "escalate"), (hotline, "withdraw")):
        assert "errors" not in await act(member, action, two["id"])
    three = await report(hotline, company.organization)
    notices = NoticeCommands(pool, load_url_protector(settings))
    overdue_at = (await notices.mark_overdue(from_global_id(three["id"])[1], now=_due(three) + timedelta(seconds=1)))
    assert overdue_at is not None

    checks = validators()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT seq, id, subject, occurred_at, envelope FROM events ORDER BY seq")
    assert rows
    seen: set[str] = set()
    for row in rows:
        envelope: dict[str, Any] = row["envelope"]
        name = envelope["type"]
        assert name in checks, f"no schema for {name}"
        errors = sorted(checks[name].iter_errors(envelope), key=str)
        assert not errors, f"{name} {row['id']}: {errors[0].message} at {list(errors[0].absolute_path)}"
        assert row["subject"].startswith("td." + name.split(".")[2] + "." + name.split(".")[3] + ".")
        seen.add(name)
        if row["subject"].startswith("td.notice."):
            record = EventRecord(row["seq"], row["id"], row["subject"], row["occurred_at"], envelope)
            for tier in (Tier.CASE, Tier.STATUS):  # what webhooks deliver below FULL validates too
                cut = redacted(Delivered(record, tier))
                assert not list(checks[name].iter_errors(cut)), (name, tier)
                assert "contentHashes" not in cut["data"]
    notice_types = {n for n in checks if n.startswith("nl.takedown.notice.")}
    assert notice_types <= seen, notice_types - seen


@pytest.mark.parametrize(
    "broken",
    [
        {"data": {"url": "https://leak.example/"}},
        {"type": "nl.takedown.notice.removed.v1"},
        {"specversion": "0.3"},
        {"extra": True},
    ],
)
def test_the_schemas_are_strict(broken: dict[str, Any]) -> None:
    check = validators()["nl.takedown.notice.reported.v1"]
    sample = {
        "specversion": "1.0",
        "id": "0193f0c2-7d7e-7c39-9f1e-3b8f3c1d2a10",
        "source": "/takedown/notices",
        "type": "nl.takedown.notice.reported.v1",
        "time": "2018-02-13T09:30:00Z",
        "subject": "Tm90aWNlOjAxOTNmMGMy",
        "datacontenttype": "application/json",
        "tdaggregateversion": 1,
        "tdactorkind": "HOTLINE",
        "data": {
            "noticeId": "Tm90aWNlOjAxOTNmMGMy",
            "reference": "NTC-2018-000123",
            "providerId": "T3JnYW5pemF0aW9u",
            "reporterId": "T3JnYW5pemF0aW9u",
            "category": "BASELINE_CSAM",
            "status": "NOTIFIED",
            "previousStatus": None,
            "reportedAt": "2018-02-13T09:30:00Z",
            "dueAt": "2018-02-14T09:30:00Z",
            "removedAt": None,
            "preservationRequested": False,
            "contentHashes": [],
        },
    }
    assert not list(check.iter_errors(sample))
    for key, value in broken.items():
        if key == "data":
            sample["data"] = {**sample["data"], **value}
        else:
            sample[key] = value
    assert list(check.iter_errors(sample))


def _due(notice: dict[str, Any]) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(notice["dueAt"].replace("Z", "+00:00"))
