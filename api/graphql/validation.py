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

from collections.abc import Iterator

import graphql
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension

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
# 1.1 MiB of nodes and tokens). Kept for reuse: texts of up to CACHED_TEXT characters, CACHED_DOCUMENTS
# of them, ~270 MiB at the very most; a longer text is parsed for its own request. Over MAX_TOKENS a
# document is refused before it is built (a 2 MiB body could make ~200 MiB).
CACHED_TEXT = 10_000
CACHED_DOCUMENTS = 250
MAX_TOKENS = 50_000  # a thousand notices reported as literals rather than variables stay under it


class Parsing(ParserCache):
    """strawberry's ParserCache (parsed documents shared by all requests, by query text), bounded as
    above, and leaving a text that does not parse to strawberry: its cache raised the syntax error
    outside strawberry's handling of one, and over WebSocket the operation then ended with a bare
    `complete` and a logged stack. strawberry parses it again where it reports the error (closing the
    socket with 4400, as graphql-transport-ws asks; BAD_USER_INPUT over HTTP). Only a text that fails
    is parsed twice."""

    def __init__(self) -> None:
        super().__init__(maxsize=CACHED_DOCUMENTS)  # strawberry shares one cache by size across instances

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options = {**context.parse_options, "max_tokens": MAX_TOKENS}  # strawberry's own parse too
        query = context.query or ""  # strawberry refuses a request without one before parsing
        parse = self.cached_parse_document if len(query) <= CACHED_TEXT else graphql.parse
        try:
            context.graphql_document = parse(query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield
