"""The fast path for plain leaf fields (api/graphql/execution.py) answers exactly as graphql-core does:
values, nulls, null propagation and errors with their paths, on the same queries."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import FieldExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql.execution import ExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Item:
    name: str
    colour: Colour
    count: int | None
    # Declared non-null but given None or a wrong type below: graphql-core's errors must come out.
    label: str
    amount: int

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def items() -> list[Item]:
    return [
        Item(name="a", colour=Colour.RED, count=1, label="x", amount=1),
        Item(name="b", colour=Colour.BLUE, count=None, label=None, amount=2),  # type: ignore[arg-type]
        Item(name="c", colour="GREEN", count=3, label="z", amount="many"),  # type: ignore[arg-type]
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return items()

    @strawberry.field
    def nullable_items(self) -> list[Item | None]:
        return items()  # type: ignore[return-value]


def run(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, execution_context_class=execution_context)
    result = schema.execute_sync(query)
    return {
        "data": result.data,
        "errors": sorted((e.message, tuple(e.path or ()), str(e.locations)) for e in result.errors or []),
    }


@pytest.mark.parametrize(
    "query",
    [
        "{ items { name colour count shout } }",
        "{ nullableItems { name count } }",
        "{ nullableItems { name label } }",  # a null for a non-null leaf: the item becomes null
        "{ nullableItems { colour } }",  # GREEN is no Colour: an error at that path
        "{ nullableItems { amount } }",  # 'many' is no Int
        "{ items { label } }",  # the error propagates up through non-null list items to `items`
        "{ items { n: name, name, ...F } } fragment F on Item { name colour }",
        "{ items { name @skip(if: true) colour @include(if: false) count } }",
    ],
)
def test_leaf_fast_path_answers_as_graphql_core_does(query: str) -> None:
    assert run(ExecutionContext, query) == run(StrawberryGraphQLCoreExecutionContext, query)


def test_the_comparison_sees_errors() -> None:
    """The cases above compare errors too: these queries do produce them."""
    assert run(ExecutionContext, "{ nullableItems { name label } }")["errors"]
    assert run(ExecutionContext, "{ nullableItems { colour } }")["errors"]
    assert run(ExecutionContext, "{ items { label } }")["data"] is None


CALLS: list[str] = []


class Shout(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        CALLS.append("called")
        return next_(source, info, **kwargs).upper() + info.field_name[:0]


@strawberry.type
class Word:
    text: str = strawberry.field(extensions=[Shout()])


@strawberry.type
class WordQuery:
    @strawberry.field
    def words(self) -> list[Word]:
        return [Word(text="a"), Word(text="b")]


def test_a_field_with_an_extension_runs_it_once_with_its_info() -> None:
    """A field without a resolver but with a field extension is not a plain leaf: the extension runs
    once per value, with the real resolve info (never first with info=None, then again)."""
    CALLS.clear()
    schema = strawberry.Schema(query=WordQuery, execution_context_class=ExecutionContext)
    result = schema.execute_sync("{ words { text } }")
    assert result.errors is None and result.data == {"words": [{"text": "A"}, {"text": "B"}]}
    assert CALLS == ["called", "called"]
