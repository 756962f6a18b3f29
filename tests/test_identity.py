"""Validation kept per parsed document, by identity (api/graphql/identity.py)."""

from __future__ import annotations

import asyncio
import copy
import gc
import weakref
from typing import Any

import pytest
import strawberry
import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode, validate
from strawberry.extensions import DisableIntrospection, ParserCache

from api.graphql.identity import ValidatedDocuments, WhileAlive
from api.graphql.limits import Measures, QueryLimits
from api.graphql.validation import MAX_COMMENTS, MAX_TOKENS, ParsedDocuments, Parsing, RequestValidation


@strawberry.type
class Query:
    @strawberry.field
    def greeting(self, name: str) -> str:
        return f"hello {name}"


def served(parser: ParserCache, validated: WhileAlive[object], *more: object) -> strawberry.Schema:
    documents = ValidatedDocuments(validated)  # type: ignore[arg-type]
    limits = QueryLimits(max_depth=100, max_cost=10**9)
    return strawberry.Schema(
        query=Query, extensions=[lambda: copy.copy(parser), lambda: RequestValidation(documents, limits), *more]  # type: ignore[list-item]
    )


def test_a_repeated_query_is_validated_once_and_its_errors_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    validations: list[object] = []

    def validating(*args: Any, **kwargs: Any) -> Any:
        validations.append(args[1])
        return validate(*args, **kwargs)

    # graphql-core's validate as strawberry's schema module calls it, on every path to it: counted, still the same
    monkeypatch.setattr(strawberry_schema, "validate", validating)
    validated: WhileAlive[object] = WhileAlive()
    schema = served(ParserCache(), validated)
    for _ in range(3):
        good = asyncio.run(schema.execute('{ greeting(name: "x") }'))
        bad = asyncio.run(schema.execute("{ greeting }"))
        assert good.errors is None and good.data == {"greeting": "hello x"}
        assert bad.data is None and bad.errors and "(name:)' of type 'String!' is required" in bad.errors[0].message
    assert len(validations) == 2 and len(validated) == 2, "each document validated once, and kept"


def test_an_entry_is_never_found_for_another_object_at_a_reused_address() -> None:
    """Keyed by id(): once a node is gone its id may be handed to a new object, which must not
    find the entry (nor leave one behind)."""

    class Node:
        pass

    kept: WhileAlive[int] = WhileAlive()
    for n in range(5000):
        node = Node()
        assert kept.get(node) is None
        kept.put(node, n)
        assert kept.get(node) == n
        del node
    assert len(kept) == 0


def test_an_entry_whose_node_died_unnoticed_is_not_found() -> None:
    """Should a node's death not yet have removed its entry when a new object takes its id, the
    entry's weak reference tells them apart."""

    class Node:
        pass

    kept: WhileAlive[str] = WhileAlive()
    newcomer, gone = Node(), Node()
    kept._entries[id(newcomer)] = (weakref.ref(gone), "the old node's")
    del gone
    assert kept.get(newcomer) is None
    kept.put(newcomer, "its own")
    assert kept.get(newcomer) == "its own"


def test_texts_that_differ_only_in_a_comment_are_kept_apart_and_go_with_the_parser_cache() -> None:
    """By identity, not content: graphql-core's nodes compare equal across such texts, and an entry
    kept for one must not be kept alive by the other."""
    validated: WhileAlive[object] = WhileAlive()
    schema = served(ParserCache(maxsize=2), validated)
    for i in range(6):
        assert asyncio.run(schema.execute(f"{{ greeting(name: \"x\") }} # {i}")).errors is None
    gc.collect()
    assert len(validated) == 2


def test_entries_made_under_other_rules_are_not_reused() -> None:
    """Rules may differ by request (an extension adds one); the kept result says under which it was made."""
    validated: WhileAlive[object] = WhileAlive()
    parser = ParserCache()
    introspection = "{ __schema { queryType { name } } }"
    assert asyncio.run(served(parser, validated).execute(introspection)).errors is None
    refused = asyncio.run(served(parser, validated, DisableIntrospection).execute(introspection))
    assert refused.errors and "introspection" in refused.errors[0].message.lower()


def served_parsing(parsed: ParsedDocuments | None = None) -> strawberry.Schema:
    documents, limits = ValidatedDocuments(), QueryLimits(max_depth=100, max_cost=10**9, measures=Measures())
    kept = ParsedDocuments() if parsed is None else parsed
    return strawberry.Schema(  # type: ignore[list-item]
        query=Query, extensions=[lambda: Parsing(kept), lambda: RequestValidation(documents, limits)]
    )


def queries(count: int, length: int) -> list[str]:
    """`count` distinct valid texts of about `length` characters."""
    return [f'{{ greeting(name: "{i}") }} #' + "x" * (length - 30) for i in range(count)]


def test_parsed_documents_are_kept_within_a_budget_of_characters() -> None:
    """A parsed text takes ~110 bytes of memory a character: the cache counts characters, not
    documents, dropping the least recently used; a text repeated is parsed once."""
    parsed = ParsedDocuments(characters=50 * 100, documents=1000)  # texts of up to 100 characters kept
    schema = served_parsing(parsed)
    texts = queries(50, 100)
    assert sum(map(len, texts)) <= 5_000
    for text in texts * 2:
        assert asyncio.run(schema.execute(text)).errors is None
    assert len(parsed) == 50, "each kept once, and found again"
    more = queries(60, 100)[50:]
    for text in more:
        asyncio.run(schema.execute(text))
    assert len(parsed) < 60
    gc.collect()
    alive = {d.loc.source.body for d in gc.get_objects() if isinstance(d, DocumentNode) and d.loc is not None}
    assert texts[0] not in alive and set(more) <= alive


def test_parsed_documents_are_kept_within_a_number() -> None:
    parsed = ParsedDocuments(characters=10**6, documents=5)
    schema = served_parsing(parsed)
    for text in queries(8, 40):
        assert asyncio.run(schema.execute(text)).errors is None
    assert len(parsed) == 5


def test_a_text_over_its_share_of_the_budget_is_parsed_for_its_request_only() -> None:
    """One big text must not push every other document out."""
    parsed = ParsedDocuments(characters=50 * 1_000, documents=100)
    schema = served_parsing(parsed)
    assert asyncio.run(schema.execute(queries(1, 900)[0])).errors is None
    assert asyncio.run(schema.execute(queries(1, 2_000)[0])).errors is None
    assert len(parsed) == 1


def test_a_document_of_too_many_tokens_is_refused_before_it_is_built() -> None:
    huge = "{ " + "__typename " * (MAX_TOKENS + 1) + "}"
    result = asyncio.run(served_parsing().execute(huge))
    assert result.errors and f"more than {MAX_TOKENS} tokens" in result.errors[0].message


def test_a_document_of_too_many_comments_is_refused_before_it_is_built() -> None:
    many = "{ __typename }" + "\n#" * (MAX_COMMENTS + 1)
    result = asyncio.run(served_parsing().execute(many))
    assert result.errors and "comments" in result.errors[0].message
