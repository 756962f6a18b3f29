"""Writes schema/events/*.json: one JSON Schema (draft 2020-12) per event type, the whole CloudEvent.

The files are the contract (tests/test_event_schemas.py validates every emitted
event against them); this script only keeps their common parts consistent.
Run it after changing an event's data, then review the diff:
    .venv/bin/python schema/events/generate.py
Strict: no unknown fields anywhere. Fields a viewer's tier may hide (reporterId,
preservationRequested, contentHashes) are optional, so the same schema also
validates what webhooks deliver after redaction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = ["GOVERNMENT", "REGULATOR", "POLICE", "PROSECUTOR", "HOTLINE", "COMPANY"]
GLOBAL_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,}$"}
TIME = {"type": "string", "format": "date-time", "pattern": "Z$"}
DATE = {"type": "string", "format": "date"}
NOTICE_STATUS = ["NOTIFIED", "ACKNOWLEDGED", "REMOVED", "VERIFIED_OFFLINE", "REFUSED", "ESCALATED", "WITHDRAWN"]
ENFORCEMENT_STATUS = ["OPEN", "WARNING_SENT", "ORDER_ISSUED", "OBJECTION_FILED", "COMPLIED", "PENALTY_IMPOSED", "CLOSED"]
AGREEMENT_STATUS = ["DRAFT", "AGREED", "ACTIVE", "COMPLETED", "WITHDRAWN"]
COMMITMENT_STATUS = ["PLANNED", "IN_PROGRESS", "AT_RISK", "DONE", "MISSED", "WITHDRAWN"]
SOURCES = {
    "notice": "/takedown/notices",
    "enforcement": "/takedown/enforcement",
    "conference": "/takedown/conferences",
    "agreement": "/takedown/conferences",
    "commitment": "/takedown/conferences",
    "victim_alert": "/takedown/victim-alerts",
}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "additionalProperties": False,
        "properties": {**required, **(optional or {})},
    }


def notice_data(name: str) -> dict[str, Any]:
    statuses = {
        "reported": ["NOTIFIED"],
        "acknowledged": ["ACKNOWLEDGED"],
        "removed": ["REMOVED"],
        "refused": ["REFUSED"],
        "verified": ["VERIFIED_OFFLINE"],
        "reappeared": ["NOTIFIED"],
        "overdue": ["NOTIFIED", "ACKNOWLEDGED"],
        "escalated": ["ESCALATED"],
        "withdrawn": ["WITHDRAWN"],
        "preservation_requested": NOTICE_STATUS,
    }[name]
    required: dict[str, Any] = {
        "noticeId": GLOBAL_ID,
        "reference": {"type": "string", "pattern": "^NTC-[0-9]{4}-[0-9]{6,}$"},
        "providerId": GLOBAL_ID,
        "category": {"enum": ["BASELINE_CSAM", "NATIONALLY_ILLEGAL", "HARMFUL"]},
        "status": {"enum": statuses},
        "previousStatus": {"type": "null"} if name in ("reported", "overdue", "preservation_requested") else {"enum": NOTICE_STATUS},
        "reportedAt": TIME,
        "dueAt": TIME,
        "removedAt": nullable(TIME),
    }
    optional: dict[str, Any] = {
        "reporterId": GLOBAL_ID,  # hidden below the CASE tier
        "preservationRequested": {"type": "boolean"},  # hidden below the CASE tier
        "refusalReason": {"enum": ["NOT_ILLEGAL", "NOT_HOSTED_BY_US", "INSUFFICIENT_INFORMATION", "OTHER"]},
    }
    if name == "refused":
        required["refusalReason"] = optional.pop("refusalReason")
    if name == "reported":
        # Only here, only on the internal stream and at the FULL tier.
        optional["contentHashes"] = {
            "type": "array",
            "maxItems": 50,
            "items": obj({"algorithm": {"enum": ["SHA256", "MD5", "PDQ"]}, "value": {"type": "string", "pattern": "^[0-9a-f]{32,64}$"}}),
        }
    return obj(required, optional)


def enforcement_data(name: str) -> dict[str, Any]:
    return obj(
        {
            "caseId": GLOBAL_ID,
            "reference": {"type": "string", "minLength": 1},
            "providerId": GLOBAL_ID,
            "status": {"enum": ENFORCEMENT_STATUS},
            "previousStatus": nullable({"enum": ENFORCEMENT_STATUS}),
            "openedAt": TIME,
            "orderDueAt": nullable(TIME),
        }
    )


def conference_data(name: str) -> dict[str, Any]:
    return obj(
        {
            "conferenceId": GLOBAL_ID,
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "heldOn": DATE,
            "organizerId": GLOBAL_ID,
            "participantIds": {"type": "array", "items": GLOBAL_ID},
        }
    )


def agreement_data(name: str) -> dict[str, Any]:
    return obj(
        {
            "agreementId": GLOBAL_ID,
            "conferenceId": GLOBAL_ID,
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "status": {"enum": AGREEMENT_STATUS},
            "previousStatus": nullable({"enum": AGREEMENT_STATUS}),
            "partyIds": {"type": "array", "items": GLOBAL_ID},
        }
    )


def commitment_data(name: str) -> dict[str, Any]:
    return obj(
        {
            "commitmentId": GLOBAL_ID,
            "agreementId": GLOBAL_ID,
            "conferenceId": GLOBAL_ID,
            "ownerId": GLOBAL_ID,
            "status": {"enum": COMMITMENT_STATUS},
            "previousStatus": nullable({"enum": COMMITMENT_STATUS}),
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "dueOn": nullable(DATE),
        }
    )


def victim_alert_data(name: str) -> dict[str, Any]:
    return obj({"victimAlertId": GLOBAL_ID, "noticeId": GLOBAL_ID, "matchedAt": TIME, "removed": {"type": "boolean"}})


EVENTS = {
    "notice": (notice_data, ["reported", "acknowledged", "removed", "refused", "verified", "reappeared", "overdue", "escalated", "withdrawn", "preservation_requested"]),
    "enforcement": (enforcement_data, ["opened", "warning_sent", "order_issued", "objection_filed", "complied", "penalty_imposed", "closed"]),
    "conference": (conference_data, ["created"]),
    "agreement": (agreement_data, ["created", "status_changed"]),
    "commitment": (commitment_data, ["added", "updated", "overdue"]),
    "victim_alert": (victim_alert_data, ["matched"]),
}
VERSIONED = {"notice", "enforcement", "agreement", "commitment"}  # carry tdaggregateversion


def envelope(aggregate: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    event_type = f"nl.takedown.{aggregate}.{name}.v1"
    required: dict[str, Any] = {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"},
        "source": {"const": SOURCES[aggregate]},
        "type": {"const": event_type},
        "time": TIME,
        "subject": GLOBAL_ID,
        "datacontenttype": {"const": "application/json"},
        "data": data,
    }
    optional: dict[str, Any] = {"tdactorkind": {"enum": KINDS}}
    if aggregate in VERSIONED:
        required["tdaggregateversion"] = {"type": "integer", "minimum": 1}
    schema = obj(required, optional)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://schemas.takedown.example/events/{event_type}.json",
        "title": f"{event_type} (CloudEvents 1.0, structured JSON)",
        "description": f"Subject td.{aggregate}.{name}.<scope>; see contract/EVENTS.md.",
        **schema,
    }


def main() -> None:
    for aggregate, (data_for, names) in EVENTS.items():
        for name in names:
            schema = envelope(aggregate, name, data_for(name))
            path = HERE / f"nl.takedown.{aggregate}.{name}.v1.json"
            path.write_text(json.dumps(schema, indent=2) + "\n")


if __name__ == "__main__":
    main()
