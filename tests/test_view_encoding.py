"""Responses are encoded with orjson (api/graphql/view.py): the same JSON values json.dumps writes,
as text (WebSocket frames must be text), with json.dumps for what orjson refuses."""

from __future__ import annotations

import json

from api.graphql.view import GraphQLView


def encode(data: object) -> str:
    return GraphQLView.encode_json(None, data)  # type: ignore[arg-type]  # uses nothing of the view


def test_a_response_encodes_to_the_same_json_values() -> None:
    data = {"data": {"notices": {"edges": [{"node": {"id": "Tm90aWNlOjE=", "reference": "TD-1", "overdue": False,
                                                     "secondsToRemoval": None, "note": "Zoë — ✓"}}]}},
            "errors": [{"message": "x", "path": ["a", 0], "extensions": {"code": "BAD_USER_INPUT"}}]}
    encoded = encode(data)
    assert isinstance(encoded, str)
    assert json.loads(encoded) == data


def test_what_orjson_refuses_is_still_written() -> None:
    assert json.loads(encode({"big": 2**70})) == {"big": 2**70}
