"""What is worked out from a parsed query, kept with it and found again by the identity of its nodes.

ParsedDocuments (api/graphql/validation.py) hands back the very same document object for a query
text it has seen, so its validation, the plans of its selection sets and what a resolver reads off its selection
can be kept per node and found again with a dict lookup. Not by the nodes themselves as keys:
graphql-core hashes and compares nodes by content, recursively, on every lookup (validating a
cached 50-notice page query spent more time hashing the document than the rest of the step), and
two texts differing only in a comment would share an entry. Entries live as long as their node
and no longer, so nothing here outgrows what keeps documents alive: ParsedDocuments, within a
budget of characters.
"""

from __future__ import annotations

import weakref
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLError
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionContext as StrawberryExecutionContext

V = TypeVar("V")


class WhileAlive(Generic[V]):
    """A value per AST node, by identity, kept while the node lives."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, node: Any) -> V | None:
        found = self._entries.get(id(node))
        return found[1] if found is not None and found[0]() is node else None

    def put(self, node: Any, value: V) -> V:
        key, entries = id(node), self._entries

        def gone(ref: weakref.ref[Any]) -> None:
            found = entries.get(key)
            if found is not None and found[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(node, gone), value)
        return value


Validated = tuple[tuple[Any, ...], list[GraphQLError]]  # the rules validated under, and what they found


class ValidatedDocuments:
    """strawberry's ValidationCache, keyed by the document's identity instead of its content."""

    def __init__(self, validated: WhileAlive[Validated] | None = None) -> None:
        self.validated: WhileAlive[Validated] = WhileAlive() if validated is None else validated

    def errors(self, context: StrawberryExecutionContext, document: DocumentNode) -> list[GraphQLError]:
        """What validating `document` with the context's rules finds, validated once per document and rules."""
        rules = tuple(context.validation_rules)
        found = self.validated.get(document)
        if found is not None and found[0] == rules:
            return found[1]
        errors = validate_document(context.schema._schema, document, rules)  # noqa: SLF001 - as ValidationCache does
        return self.validated.put(document, (rules, errors))[1]
