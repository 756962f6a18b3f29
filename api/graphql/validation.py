"""Parsing and validating a request. The validation step runs in one extension hook, each check
from the module that owns it:

1. the document against the schema, validated once per document (identity.ValidatedDocuments);
2. which operation runs, and over what (operations.check_operation);
3. how deep and how costly it may be (limits.QueryLimits).

One hook, not an extension each: strawberry makes each extension per request and runs its hooks
through context managers of their own, and an extension cost ~70,000 instructions a request
whatever its hook did, 3% of a single reportNotice (the checks themselves are dictionary lookups
for a document seen before). Two extensions became this one: a report 2.38 -> 2.33 million
instructions, a 50-notice page 7.40 -> 7.34 (`python -m bench.inprocess_read [--report]
--instructions`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import graphql
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from .identity import ValidatedDocuments
from .limits import QueryLimits
from .operations import check_operation


class RequestValidation(SchemaExtension):
    def __init__(self, documents: ValidatedDocuments, limits: QueryLimits) -> None:
        super().__init__()
        self.documents = documents
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None, "validation runs on a parsed document"
        context.pre_execution_errors = self.documents.errors(context, document)
        check_operation(context, document)  # raises for a subscription over HTTP (a 400)
        if not context.pre_execution_errors:
            # strawberry returns these errors when the hook exits, and does not execute.
            context.pre_execution_errors = self.limits.errors(context, document)
        yield


# A parsed document takes ~110 bytes of memory per character of its text (a 10,000-character query:
# 1.1 MiB of nodes and tokens), so the documents kept for reuse are bounded by their texts' length:
# CACHED_CHARACTERS in all, ~270 MiB at the very most, and CACHED_DOCUMENTS of them. Over MAX_TOKENS (or
# MAX_COMMENTS) a document is refused before it is built (a 2 MiB body could make ~200 MiB).
CACHED_CHARACTERS = 2_500_000
CACHED_DOCUMENTS = 1000
ENTRY_SHARE = 50  # a text over 1/50 of the budget (50,000 characters) is parsed for its own request
MAX_TOKENS = 50_000  # a thousand notices reported as literals rather than variables stay under it
MAX_COMMENTS = 1_000  # comments are kept as tokens too, and not counted in MAX_TOKENS


class ParsedDocuments:
    """Parsed documents by query text, shared by all requests, the least recently used dropped first
    to stay within the bounds above. The same text gives the same document object, which is what the
    identity-keyed caches (validation, measures, execution plans) rely on. strawberry's ParserCache
    counts documents only, whatever their size."""

    def __init__(self, characters: int = CACHED_CHARACTERS, documents: int = CACHED_DOCUMENTS) -> None:
        self.characters, self.documents = characters, documents
        self._kept: OrderedDict[str, DocumentNode] = OrderedDict()
        self._length = 0  # characters of the texts kept

    def __len__(self) -> int:
        return len(self._kept)

    def parse(self, query: str, options: Mapping[str, Any]) -> DocumentNode:
        found = self._kept.get(query)
        if found is not None:
            self._kept.move_to_end(query)
            return found
        document = graphql.parse(query, **options)
        if len(query) <= self.characters // ENTRY_SHARE:  # one big text must not empty the cache
            self._kept[query] = document
            self._length += len(query)
            while self._length > self.characters or len(self._kept) > self.documents:
                text, _ = self._kept.popitem(last=False)
                self._length -= len(text)
        return document


class Parsing(SchemaExtension):
    """The parse step from ParsedDocuments, leaving a text that does not parse to strawberry: a syntax
    error raised here is outside strawberry's handling of one (strawberry's own ParserCache does that),
    and over WebSocket the operation then ended with a bare `complete` and a logged stack. strawberry
    parses it again where it reports the error (closing the socket with 4400, as graphql-transport-ws
    asks; BAD_USER_INPUT over HTTP). Only a text that fails is parsed twice."""

    def __init__(self, documents: ParsedDocuments) -> None:
        super().__init__()
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # graphql-core's limits, also for strawberry's own parse of a text that fails here
        context.parse_options = {**context.parse_options, "max_lexical_tokens": MAX_TOKENS, "max_comments": MAX_COMMENTS}  # type: ignore[typeddict-unknown-key]
        try:
            context.graphql_document = self.documents.parse(context.query or "", context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield
