"""The fast path through execution (api/graphql/execution.py) answers exactly as graphql-core does:
values, nulls, null propagation and errors with their paths and locations, on the same queries,
for leaves, objects and lists held by attributes or returned by resolvers, sync and async."""

from __future__ import annotations

import asyncio
import copy
import enum
import functools
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NewType

import pytest
import strawberry
from graphql import Undefined
from graphql.execution.executor import Executor
from strawberry.extensions import FieldExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql import execution
from api.graphql.execution import ExecutionContext
from api.graphql.inputs import fast_input


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


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Owner(Named):
    since: int

    @strawberry.field
    def badge(self, info: strawberry.Info) -> str:
        return f"{self.name}@{'.'.join(str(p) for p in info.path.as_list())}"


@strawberry.type
class Stranger:
    name: str


class SubOwner(Owner):
    """Not a strawberry type of its own: strawberry's is_type_of for Owner accepts it by isinstance."""


@strawberry.type
class Box:
    label: str
    owner: Owner | None
    sure_owner: Owner  # given None below: the error propagates to the box
    owners: list[Owner | None]
    tags: list[str | None]
    strict_tags: list[str]
    pair: tuple[int, int]  # type: ignore[valid-type]

    @strawberry.field
    def keeper(self) -> Owner:
        if self.label == "boom":
            raise ValueError("no keeper for boom")
        return Owner(name=f"k-{self.label}", since=1)

    @strawberry.field
    async def late_owner(self) -> Owner:
        await asyncio.sleep(0)
        return Owner(name=f"late-{self.label}", since=2)

    @strawberry.field
    async def late_label(self) -> str:
        await asyncio.sleep(0)
        if self.label == "boom":
            raise ValueError("late boom")
        return self.label

    @strawberry.field
    def generated(self) -> list[int]:
        return (i for i in range(3))  # type: ignore[return-value]

    @strawberry.field
    def awaited_items(self) -> list[Owner]:
        async def one(i: int) -> Owner:
            return Owner(name=f"a{i}", since=i)
        return [one(i) for i in range(2)]  # type: ignore[misc]

    @strawberry.field
    def named(self) -> Named:
        return Owner(name="via-interface", since=3)

    @strawberry.field
    def impostor(self) -> Owner:
        return Stranger(name="not an owner")  # type: ignore[return-value]

    @strawberry.field
    def cast_away(self) -> Owner | None:
        """An Owner, cast to another type for the boxes after the first two (by then a plan is compiled)."""
        owner = Owner(name=f"c-{self.label}", since=4)
        return owner if self.label in ("one", "two") else strawberry.cast(Stranger, owner)

    @strawberry.field
    def sub_owner(self) -> Owner:
        return SubOwner(name="a subclass's", since=5)

    @strawberry.field
    def streamed(self) -> AsyncIterator[int]:  # type: ignore[misc]
        async def numbers() -> AsyncIterator[int]:
            for i in range(2):
                yield i
        return numbers()  # type: ignore[return-value]


def boxes() -> list[Box]:
    def box(label: str, **overrides: Any) -> Box:
        values: dict[str, Any] = {
            "label": label, "owner": Owner(name=f"o-{label}", since=1), "sure_owner": Owner(name="s", since=2),
            "owners": [Owner(name="x", since=1), None], "tags": ["t", None], "strict_tags": ["a", "b"], "pair": (1, 2),
        }
        return Box(**{**values, **overrides})

    return [box("one"), box("two", owner=None, owners=[None, Owner(name="y", since=5)]), box("boom"),
            box("bad", sure_owner=None, strict_tags=["a", None], tags=[3, "x"])]


def iterate_boxes() -> Iterator[Box]:
    yield from boxes()


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return items()

    @strawberry.field
    def nullable_items(self) -> list[Item | None]:
        return items()  # type: ignore[return-value]

    @strawberry.field
    def boxes(self) -> list[Box | None]:
        return boxes()  # type: ignore[return-value]

    @strawberry.field
    def strict_boxes(self) -> list[Box]:
        return boxes()

    @strawberry.field
    def box_iterator(self) -> list[Box | None]:
        return iterate_boxes()  # type: ignore[return-value]

    @strawberry.field
    async def first_box(self) -> Box:
        return boxes()[0]


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> Box:
        return boxes()[0]

    @strawberry.mutation
    async def pick(self, label: str) -> Box:
        await asyncio.sleep(0)
        found = [b for b in boxes() if b.label == label]
        if not found:
            raise ValueError(f"no box {label}")
        return found[0]


class Interpreting(ExecutionContext):
    compile_after = None  # the fast path as written in execution.py, never compiled


class CompilingAtOnce(ExecutionContext):
    compile_after = 1  # every kept plan compiled for its first object (before its nested plans are known)


class Compiling(ExecutionContext):
    compile_after = 2  # compiled for its second object: the plans of nested objects known, and inlined


FAST_PATHS = [Interpreting, CompilingAtOnce, Compiling]


def _answer(result: Any) -> dict[str, Any]:
    return {
        "data": result.data,
        "errors": sorted((e.message, tuple(e.path or ()), str(e.locations)) for e in result.errors or []),
    }


def run(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, mutation=Mutation, execution_context_class=execution_context)
    return _answer(asyncio.run(schema.execute(query)))


def run_repeated(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str, times: int = 3) -> list[dict[str, Any]]:
    """The same query answered `times` times by one schema with a parser cache, as a server answers a
    client repeating it: plans are kept from the first request on, and compiled as they are used."""
    from strawberry.extensions import ParserCache

    parser = ParserCache()
    schema = strawberry.Schema(query=Query, mutation=Mutation, execution_context_class=execution_context,
                               extensions=[lambda: copy.copy(parser)])
    return [_answer(asyncio.run(schema.execute(query))) for _ in range(times)]


QUERIES = [
    "{ items { name colour count shout } }",
    "{ nullableItems { name count } }",
    "{ nullableItems { name label } }",  # a null for a non-null leaf: the item becomes null
    "{ nullableItems { colour } }",  # GREEN is no Colour: an error at that path
    "{ nullableItems { amount } }",  # 'many' is no Int
    "{ items { label } }",  # the error propagates up through non-null list items to `items`
    "{ items { n: name, name, ...F } } fragment F on Item { name colour }",
    "{ items { name @skip(if: true) colour @include(if: false) count } }",
    "{ boxes { label owner { name since badge } pair } }",  # objects by attribute, nullable, a resolver with info
    "{ boxes { label sureOwner { name } } }",  # a null for a non-null object: the box becomes null
    "{ strictBoxes { label sureOwner { name } } }",  # ... and with non-null boxes, the whole list
    "{ boxes { owners { name badge } tags } }",  # lists of nullable objects and leaves
    "{ boxes { strictTags } }",  # a null in a list of non-null leaves
    "{ boxes { label keeper { name } } }",  # a resolver raising for one box
    "{ strictBoxes { keeper { name } } }",
    "{ boxes { lateOwner { name badge } lateLabel } }",  # async resolvers inside the fast path
    "{ strictBoxes { lateLabel } }",  # an async error propagating through non-null items
    "{ boxes { generated awaitedItems { name } } }",  # a generator; a list of awaitables
    "{ boxes { named { name ... on Owner { since } } impostor { name } } }",  # interface; failed is_type_of
    "{ boxes { label castAway { name } subOwner { name since } } }",  # an Owner cast to another type; a subclass
    "{ boxIterator { label owner { name } } }",  # an iterator, not a list: graphql-core's path
    "{ firstBox { label owners { name } streamed } }",  # async iterator (graphql-core's path)
    "{ a: boxes { label } b: boxes { owner { name } } }",
    "{ boxes { ...on Box { owner { ...O } } } } fragment O on Owner { name badge }",
    "mutation { touch { label owner { name badge } owners { name } } }",
    'mutation { pick(label: "two") { label owner { name } keeper { name } } }',  # one field: the planned path
    'mutation { pick(label: "none") { label } }',  # ... raising: the non-null error nulls the data
    'mutation { a: pick(label: "one") { label } b: touch { label } c: pick(label: "none") { label } }',  # in order
]


@pytest.mark.parametrize("fast_path", FAST_PATHS)
@pytest.mark.parametrize("query", QUERIES)
def test_fast_path_answers_as_graphql_core_does(query: str, fast_path: type[ExecutionContext]) -> None:
    assert run(fast_path, query) == run(StrawberryGraphQLCoreExecutionContext, query)


@pytest.mark.parametrize("query", QUERIES)
def test_compiled_plans_answer_as_graphql_core_does(query: str) -> None:
    """Repeated, so that kept plans are compiled with what the first answer taught them (the plans
    of nested objects, inlined)."""
    core = run(StrawberryGraphQLCoreExecutionContext, query)
    assert run_repeated(Compiling, query) == [core, core, core]


def test_kept_plans_are_compiled_with_nested_objects_inlined(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: dict[str, Any] = {}
    compile_plan = execution.compile_plan

    def noting(parent_type: Any, *args: Any) -> Any:
        compiled[parent_type.name] = compile_plan(parent_type, *args)
        return compiled[parent_type.name]

    monkeypatch.setattr(execution, "compile_plan", noting)
    query = "{ boxes { label owner { name badge } owners { name } } }"
    core = run(StrawberryGraphQLCoreExecutionContext, query)
    assert run_repeated(Compiling, query) == [core, core, core]
    assert set(compiled) == {"Query", "Box", "Owner"}
    box = compiled["Box"].__code__
    assert box.co_filename == "<plan of Box>"
    assert {"sub1", "sub2"} <= set(box.co_names), "owner and owners completed straight into their plans"


def test_a_mutation_of_one_field_takes_the_planned_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one field there is no order to keep; with more, graphql-core runs them one after another."""
    serially: list[int] = []
    original = Executor.execute_fields_serially

    def noting(self: Executor[Any], parent_type: Any, source: Any, path: Any, fields: Any, position: Any) -> Any:
        serially.append(len(fields))
        return original(self, parent_type, source, path, fields, position)

    monkeypatch.setattr(Executor, "execute_fields_serially", noting)
    assert run(ExecutionContext, 'mutation { pick(label: "one") { label } }')["data"] == {"pick": {"label": "one"}}
    assert serially == []
    answer = run(ExecutionContext, 'mutation { a: pick(label: "one") { label } b: touch { label } }')
    assert answer["data"] == {"a": {"label": "one"}, "b": {"label": "one"}} and serially == [2]


def test_the_comparison_sees_errors() -> None:
    """The cases above compare errors too: these queries do produce them."""
    assert run(ExecutionContext, "{ nullableItems { name label } }")["errors"]
    assert run(ExecutionContext, "{ nullableItems { colour } }")["errors"]
    assert run(ExecutionContext, "{ items { label } }")["data"] is None
    assert run(ExecutionContext, "{ strictBoxes { lateLabel } }")["data"] is None
    impostor = run(ExecutionContext, "{ boxes { impostor { name } } }")["errors"]
    assert impostor and "Expected value of type 'Owner'" in impostor[0][0]


def test_the_fast_path_gives_the_resolvers_their_real_path() -> None:
    data = run(ExecutionContext, "{ boxes { owners { badge } } }")["data"]
    assert data["boxes"][0]["owners"][0] == {"badge": "x@boxes.0.owners.0.badge"}


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


# What the review of the fast path found, each compared with graphql-core, calls included.

CHECKS: list[str] = []


@strawberry.type
class Pet:
    name: str

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> Any:
        CHECKS.append("sync")
        return 1 if isinstance(obj, Pet) else 0  # truthy, not True


@strawberry.type
class LatePet:
    name: str

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> Any:
        async def check() -> bool:
            CHECKS.append("awaited")
            return isinstance(obj, LatePet)

        CHECKS.append("asked")
        return check()


def odd_serialize(value: Any) -> Any:
    CHECKS.append(f"serialize {value}")
    if value == "raise":
        raise ValueError("cannot serialize")
    return None if value == "none" else value


Odd = NewType("Odd", str)


def review_config(**options: Any) -> StrawberryConfig:
    odd = strawberry.scalar(name="Odd", serialize=odd_serialize, parse_value=str)
    return StrawberryConfig(scalar_map={Odd: odd}, **options)


@strawberry.type
class Row:
    label: str | None


@strawberry.type
class Thing:
    name: str

    @strawberry.field
    def parent_named_info(self, info: strawberry.Parent[Thing]) -> str:  # type: ignore[valid-type]
        return type(info).__name__  # strawberry hands this one the Info, not the parent


@strawberry.type
class ReviewQuery:
    @strawberry.field
    def pet(self) -> Pet:
        return Pet(name="p")

    @strawberry.field
    def pets(self) -> list[Pet]:
        return [Pet(name="a"), Pet(name="b")]

    @strawberry.field
    def late_pet(self) -> LatePet:
        return LatePet(name="l")

    @strawberry.field
    def late_pets(self) -> list[LatePet]:
        return [LatePet(name="a"), LatePet(name="b")]

    @strawberry.field
    def odd(self) -> Odd:
        return "raise"

    @strawberry.field
    def odds(self) -> list[Odd | None]:
        return ["fine", "none", "raise"]

    @strawberry.field
    def rows(self) -> list[Row]:
        async def later() -> Row:
            CHECKS.append("later ran")
            return Row(label="late")

        return [Row(label=None), later()]  # type: ignore[list-item]

    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="t")


def run_counted(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str,
                config: StrawberryConfig | None = None, times: int = 1) -> dict[str, Any]:
    """The answer and the calls made for it; with `times`, of the last of so many requests to one
    schema with a parser cache (the earlier answers must be the same)."""
    from strawberry.extensions import ParserCache

    parser = ParserCache()
    schema = strawberry.Schema(query=ReviewQuery, execution_context_class=execution_context, config=config or review_config(),
                               extensions=[lambda: copy.copy(parser)])
    answers = []
    for _ in range(times):
        CHECKS.clear()
        answers.append({**_answer(asyncio.run(schema.execute(query))), "calls": list(CHECKS)})
    assert all(a == answers[0] for a in answers), answers
    return answers[-1]


@pytest.mark.parametrize("query", [
    "{ pet { name } }",  # is_type_of answers 1: asked once, as graphql-core asks
    "{ pets { name } }",
    "{ latePet { name } }",  # an awaitable is_type_of is awaited, once
    "{ latePets { name } }",
    "{ odd }",  # a scalar whose serialize raises: called once
    "{ odds }",
    "{ rows { label } }",  # a failing item: the rest of the list still runs, as graphql-core runs it
    "{ thing { parentNamedInfo } }",  # strawberry's own way of passing a parameter named info
])
@pytest.mark.parametrize("fast_path", FAST_PATHS)
def test_fast_path_calls_what_graphql_core_calls(query: str, fast_path: type[ExecutionContext]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... was never awaited"
        fast, core = run_counted(fast_path, query, times=3), run_counted(StrawberryGraphQLCoreExecutionContext, query)
    assert fast == core
    assert fast["calls"] or "parentNamedInfo" in query


def test_a_default_resolver_configured_by_a_later_schema_is_used() -> None:
    """strawberry reads a field's default resolver on every call, and every schema build sets it."""
    assert run_counted(ExecutionContext, "{ thing { name } }")["data"] == {"thing": {"name": "t"}}
    upper = review_config(default_resolver=lambda source, name: str(getattr(source, name)).upper())
    try:
        assert run_counted(ExecutionContext, "{ thing { name } }", upper)["data"] == {"thing": {"name": "T"}}
        assert run_counted(StrawberryGraphQLCoreExecutionContext, "{ thing { name } }", upper)["data"] == {"thing": {"name": "T"}}
    finally:
        strawberry.Schema(query=ReviewQuery, config=review_config())  # default resolver back to getattr


def test_what_is_kept_across_requests_never_depends_on_the_request() -> None:
    """With the parser cache a repeated query has the same field nodes, and plans are kept across
    requests; a selection whose fields depend on variables (@skip, @include) is planned each time."""
    from strawberry.extensions import ParserCache

    parser = ParserCache()
    schema = strawberry.Schema(query=Query, execution_context_class=ExecutionContext, extensions=[lambda: copy.copy(parser)])
    core = strawberry.Schema(query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    queries = [
        "query($s: Boolean!) { boxes { owner { name @skip(if: $s) since } owners { ...O } } } "
        "fragment O on Owner { badge @include(if: $s) }",
        "query($s: Boolean!) { boxes { label owner { name since } } }",
    ]
    for query in queries:
        for skip in (True, False, True):
            fast = asyncio.run(schema.execute(query, variable_values={"s": skip}))
            slow = asyncio.run(core.execute(query, variable_values={"s": skip}))
            assert fast.data == slow.data and str(fast.errors) == str(slow.errors)
    assert asyncio.run(schema.execute(queries[0], variable_values={"s": True})).data["boxes"][0]["owner"] == {"since": 1}
    assert schema._schema.__dict__.get("_takedown_shared_subfields"), "the second query's plans were kept"


def test_plans_kept_across_requests_go_when_the_parser_cache_lets_their_query_go() -> None:
    """Kept plans hold their query's nodes (and so its text): they must not outlive the parser
    cache's bound, or a client sending ever new queries would pin them all."""
    import gc

    from strawberry.extensions import ParserCache

    parser = ParserCache(maxsize=2)
    schema = strawberry.Schema(query=Query, execution_context_class=ExecutionContext, extensions=[lambda: copy.copy(parser)])
    for i in range(6):
        result = asyncio.run(schema.execute(f"{{ boxes {{ label owner {{ name }} }} }} # {i}"))
        assert result.errors is None
    gc.collect()
    kept = schema._schema.__dict__["_takedown_shared_subfields"]
    assert len(kept) == 2, "one per query the parser cache still holds (the texts differ only in a comment)"


def _reads_info_by_keyword(resolver: Callable[..., str]) -> Callable[..., str]:
    """A decorator as an authorization or logging one is written: it reads info from its keywords."""
    @functools.wraps(resolver)
    def wrapper(self: Any, **kwargs: Any) -> str:
        return "wrapped:" + resolver(self, kwargs["info"])
    return wrapper


@strawberry.type
class Asker:
    name: str

    @strawberry.field
    def about(self, info: strawberry.Info) -> str:
        """What a resolver may read of its info: the fast path builds graphql-core's part on first use."""
        selected = [f.name for f in info.selected_fields]
        return f"{isinstance(info, strawberry.Info)}|{info.field_name}|{info.context['who']}|{selected}|{info.path.as_list()}"

    @strawberry.field
    def who(self, info: strawberry.Info) -> str:
        return f"{type(info).__name__}|{info.context['who']}"

    # Other shapes: info by keyword only (called with keywords), under another name (by position),
    # and behind a decorator whose wrapper takes keywords only (with keywords, as strawberry calls it).
    @strawberry.field
    def by_keyword(self, *, info: strawberry.Info) -> str:
        return f"{self.name}|{info.field_name}|{info.context['who']}"

    @strawberry.field
    def renamed(self, asked: strawberry.Info) -> str:
        return f"{self.name}|{asked.field_name}|{asked.context['who']}"

    @strawberry.field
    @_reads_info_by_keyword
    def wrapped(self, info: strawberry.Info) -> str:
        return f"{self.name}|{info.field_name}|{info.context['who']}"


@strawberry.type
class InfoQuery:
    @strawberry.field
    def askers(self) -> list[Asker]:
        return [Asker(name="a"), Asker(name="b")]


class OwnInfo(strawberry.Info):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize("fast_path", FAST_PATHS)
def test_resolvers_see_the_same_info_on_the_fast_path(fast_path: type[ExecutionContext]) -> None:
    def ask(execution_context: type[StrawberryGraphQLCoreExecutionContext], config: StrawberryConfig | None = None) -> Any:
        schema = strawberry.Schema(query=InfoQuery, execution_context_class=execution_context, config=config)
        result = asyncio.run(schema.execute("{ askers { about who byKeyword renamed wrapped } }", context_value={"who": "me"}))
        assert result.errors is None, result.errors
        return result.data

    fast, core = ask(fast_path), ask(StrawberryGraphQLCoreExecutionContext)
    without_type = [{k: v for k, v in a.items() if k != "who"} for a in fast["askers"]]
    assert without_type == [{k: v for k, v in a.items() if k != "who"} for a in core["askers"]]  # `who` names the type
    assert [(a["byKeyword"], a["renamed"], a["wrapped"]) for a in fast["askers"]] == [
        ("a|byKeyword|me", "a|renamed|me", "wrapped:a|wrapped|me"), ("b|byKeyword|me", "b|renamed|me", "wrapped:b|wrapped|me")]
    assert fast["askers"][0]["about"] == "True|about|me|['about']|['askers', 0, 'about']"
    assert fast["askers"][1]["about"] == "True|about|me|['about']|['askers', 1, 'about']"  # compiled, with Compiling
    # A configured info class is what the resolver gets, as strawberry would give it.
    own = ask(fast_path, StrawberryConfig(info_class=OwnInfo))
    assert own["askers"][0]["who"] == "OwnInfo|me"


# What the review of the compiled plans found.

@strawberry.type
class Vague:
    label: str | None
    owner: Owner | None


@strawberry.type
class VagueQuery:
    @strawberry.field
    def owners(self) -> list[Owner | None]:
        return [Owner(name="a", since=1), Undefined, Owner(name="b", since=2)]  # type: ignore[list-item]

    @strawberry.field
    def vague(self) -> list[Vague]:
        return [Vague(label=Undefined, owner=Undefined), Vague(label="x", owner=Owner(name="o", since=3)),  # type: ignore[arg-type]
                Vague(label=Undefined, owner=Undefined)]  # type: ignore[arg-type]

    @strawberry.field
    def hello(self) -> str:
        return "hi"


def _answers(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str,
             variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from strawberry.extensions import ParserCache

    parser = ParserCache()
    schema = strawberry.Schema(query=VagueQuery, execution_context_class=execution_context,
                               extensions=[lambda: copy.copy(parser)])
    return [_answer(asyncio.run(schema.execute(query, variable_values=v))) for v in variables]


@pytest.mark.parametrize("query", [
    "query($s: Boolean!) { hello @skip(if: $s) }",  # the operation's selection, empty
    "query($s: Boolean!) { vague { label @skip(if: $s) } }",  # each item's selection, empty
    "query($s: Boolean!) { owners { ... on Owner @skip(if: $s) { name } } }",
])
def test_an_empty_selection_is_compiled_and_answers_as_graphql_core_does(query: str) -> None:
    """Every field skipped: the plan has no fields, and compiling it must still give an object."""
    times = [{"s": True}] * 4
    assert _answers(Compiling, query, times) == _answers(StrawberryGraphQLCoreExecutionContext, query, times)
    assert _answers(Compiling, query, times)[-1]["errors"] == []


@pytest.mark.parametrize("fast_path", FAST_PATHS)
def test_graphql_cores_undefined_is_null_wherever_it_appears(fast_path: type[ExecutionContext]) -> None:
    """graphql-core completes its Undefined as null: in a list of objects, for a leaf, for an object;
    it must never be taken for an ordinary value (which compiled plans complete as they are)."""
    for query in ("{ owners { name } }", "{ vague { label owner { name } } }", "{ owners { name } vague { owner { name } } }"):
        once = [{}] * 3
        assert _answers(fast_path, query, once) == _answers(StrawberryGraphQLCoreExecutionContext, query, once)
    assert type(Undefined) not in execution._ORDINARY and type(None) not in execution._ORDINARY


def test_selections_collected_under_variables_are_kept_only_a_few_per_operation() -> None:
    """Each combination of @include variables collects other fields: 2^n plans for n of them. A few
    are kept (and compiled), the others made per request: the answers are the same either way."""
    import itertools

    from strawberry.extensions import ParserCache

    n = 5
    query = "query({}) {{ always: hello {} }}".format(
        ", ".join(f"$v{i}: Boolean!" for i in range(n)), " ".join(f"f{i}: hello @include(if: $v{i})" for i in range(n)))
    parser = ParserCache()
    schema = strawberry.Schema(query=VagueQuery, execution_context_class=Compiling, extensions=[lambda: copy.copy(parser)])
    for combination in itertools.product((False, True), repeat=n):
        variables = {f"v{i}": on for i, on in enumerate(combination)}
        for _ in range(2):
            answer = asyncio.run(schema.execute(query, variable_values=variables))
            assert answer.errors is None
            assert answer.data == {"always": "hi", **{f"f{i}": "hi" for i, on in enumerate(combination) if on}}
    kept = schema._schema.__dict__["_takedown_shared_subfields"]
    (plans,) = [entry[1] for entry in kept._entries.values()]
    assert sum(1 for key in plans if key[0] == execution._COLLECTED) == execution._MAX_COLLECTED


def test_a_plan_that_does_not_compile_is_interpreted(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[str] = []

    def failing(parent_type: Any, *args: Any) -> Any:
        attempts.append(parent_type.name)
        raise SyntaxError("a compiler bug")

    monkeypatch.setattr(execution, "compile_plan", failing)
    query = "{ boxes { label owner { name badge } owners { name } } }"
    core = run(StrawberryGraphQLCoreExecutionContext, query)
    assert run_repeated(Compiling, query) == [core, core, core]
    assert sorted(attempts) == ["Box", "Owner", "Owner", "Query"], "one attempt per plan, not one per object"
    assert "did not compile; it is interpreted" in caplog.text


# Arguments: converted by a plan made once (api/graphql/inputs.py, argument_plan) where strawberry
# converts them on every call; what the resolver is given must be what strawberry would give it.

def _above(cls: type) -> type:
    """A check strawberry runs as the input is built (its __init__): an error of the argument."""
    def __post_init__(self: Any) -> None:
        if self.high is not None and self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
    cls.__post_init__ = __post_init__  # type: ignore[attr-defined]
    return cls


@fast_input
@strawberry.input
@_above
class Span:
    low: int
    high: int | None = None
    colours: list[Colour] | None = None
    inner: Span | None = None


@strawberry.input
class Plain:  # no fast_input: strawberry converts it, and with it every argument of the field
    word: str


@strawberry.input
class Told:
    """Built by a hook of its own (not planned): it records what strawberry hands such a hook."""

    word: str


def _told(target: type, value: Any, context: Any) -> Any:
    return (value["word"], context.path, type(context.info).__name__)


Told.__strawberry_definition__.from_input = _told  # type: ignore[attr-defined]


@fast_input
@strawberry.input
class Wrapper:  # planned, holding an input that strawberry converts (and hands its context)
    told: Told


def _keyword_order(resolver: Callable[..., str]) -> Callable[..., str]:
    """A decorator that reads its keywords in order, as one building a cache key from them would."""
    @functools.wraps(resolver)
    def wrapper(**kwargs: Any) -> str:
        return f"{list(kwargs)}: {resolver(**kwargs)}"
    return wrapper


@_keyword_order
def _rooted(root: Any, n: int, info: strawberry.Info) -> str:
    return f"{n} {type(root).__name__} {info.field_name}"


@strawberry.type
class ArgumentQuery:
    @strawberry.field
    def echo(self, word: str, times: int = 2, loud: bool | None = None, colour: Colour = Colour.RED,
             tags: list[str] | None = None, span: Span | None = None) -> str:
        return repr((word, times, loud, colour, tags, span))

    @strawberry.field
    async def later(self, info: strawberry.Info, word: str, span: Span | None = None) -> str:
        await asyncio.sleep(0)
        return repr((word, span, info.path.as_list(), type(info).__name__))

    @strawberry.field
    def plain(self, given: Plain, word: str = "w") -> str:
        return repr((given, word))

    @strawberry.field
    def global_id(self, id: strawberry.relay.GlobalID) -> str:
        return repr(id)

    @strawberry.field
    def maybe(self, word: strawberry.Maybe[str | None] = None) -> str:
        return repr(word)

    @strawberry.field
    def boxes(self, first: int = 2) -> list[Box]:
        return boxes()[:first]

    @strawberry.field
    def appended(self, tags: list[str] = ["a"]) -> list[str]:  # noqa: B006 - a default is what is tested
        tags.append("x")  # the default is graphql-core's one list for every request: it must be a copy
        return tags

    @strawberry.field
    def unset(self, given: int | None = strawberry.UNSET) -> str:
        return repr(given)  # left out when absent: the resolver's own default

    @strawberry.field
    def wrapped(self, wrapper: Wrapper) -> str:
        return repr(wrapper)

    @strawberry.field
    async def later_wrapped(self, wrapper: Wrapper) -> str:
        return repr(wrapper)

    rooted: str = strawberry.field(resolver=_rooted)

    @strawberry.field
    def refuse(self, low: int) -> int:
        if low < 0:
            raise ValueError("negative")
        return low


def _argument_answers(execution_context: type[StrawberryGraphQLCoreExecutionContext], query: str,
                      variables: dict[str, Any] | None) -> list[dict[str, Any]]:
    from strawberry.extensions import ParserCache

    parser = ParserCache()
    schema = strawberry.Schema(query=ArgumentQuery, execution_context_class=execution_context,
                               extensions=[lambda: copy.copy(parser)])
    return [_answer(asyncio.run(schema.execute(query, variable_values=variables))) for _ in range(3)]


ARGUMENT_QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    ('{ echo(word: "a") }', None),  # defaults filled in
    ('query($w: String!, $c: Colour!) { echo(word: $w, loud: true, colour: $c, tags: ["x", "y"], '
     'span: {low: 1, colours: [RED, BLUE], inner: {low: 0}}) }', {"w": "b", "c": "BLUE"}),
    ("query($s: Span) { echo(word: \"c\", span: $s) }", {"s": {"low": 3, "high": 4}}),
    ("query($s: Span) { echo(word: \"c\", span: $s) }", {"s": None}),
    ("query($t: Int) { echo(word: \"d\", times: $t) }", {"t": None}),  # null for a non-null argument: an error
    ('{ echo(word: "e", span: {low: 2, high: 1}) }', None),  # the input refuses itself
    ('{ first: later(word: "f") second: later(word: "g", span: {low: 1}) }', None),  # async
    ('{ plain(given: {word: "p"}) }', None),
    ('{ globalId(id: "T3duZXI6MQ==") }', None),
    ('{ globalId(id: "not base64") }', None),
    ("{ maybe }", None),
    ("{ maybe(word: null) }", None),
    ('{ maybe(word: "m") }', None),
    ("{ boxes(first: 1) { label owner { name } } all: boxes { label } }", None),
    ("{ a: appended b: appended }", None),
    ("{ refuse(low: -1) }", None),
    ('{ a: later(word: "x", span: {low: 2, high: 1}) b: refuse(low: -1) }', None),  # the async one fails when awaited
    ('{ a: later(word: "x", span: {low: 2, high: 1}) b: echo(word: "y") }', None),
    ("{ unset } ", None),
    ('{ wrapped(wrapper: {told: {word: "t"}}) laterWrapped(wrapper: {told: {word: "u"}}) }', None),
    ("{ rooted(n: 3) }", None),
]


@pytest.mark.parametrize("fast_path", FAST_PATHS)
@pytest.mark.parametrize(("query", "variables"), ARGUMENT_QUERIES)
def test_resolvers_get_their_arguments_as_strawberry_gives_them(query: str, variables: dict[str, Any] | None,
                                                                 fast_path: type[ExecutionContext]) -> None:
    assert _argument_answers(fast_path, query, variables) == _argument_answers(
        StrawberryGraphQLCoreExecutionContext, query, variables)


def test_arguments_are_planned_unless_strawberry_must_convert_one_of_them() -> None:
    schema = strawberry.Schema(query=ArgumentQuery, execution_context_class=ExecutionContext)
    fields = schema._schema.query_type.fields  # type: ignore[union-attr]
    planned = {name: execution._definition(field) for name, field in fields.items()}
    direct = {name for name, definition in planned.items() if definition is not None and definition.resolve.__name__ == "direct"}
    assert direct == {"echo", "later", "boxes", "appended", "refuse", "unset", "wrapped", "laterWrapped", "rooted"}
    assert all(definition is not None and definition.arguments for definition in planned.values())
